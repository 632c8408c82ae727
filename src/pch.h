// Precompiled header for the pdeq library and its tests: parsing LibTorch's headers dominates build time.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
