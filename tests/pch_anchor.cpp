// Anchors the tests' precompiled header target; intentionally empty.
