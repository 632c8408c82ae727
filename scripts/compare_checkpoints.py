#!/usr/bin/env python3
# Usage: scripts/compare_checkpoints.py A.pt B.pt   (exit 0 when every tensor of A has a bitwise-equal one in B)
# Compares the tensors of two pdeq checkpoints. The optimizer state is keyed by tensor addresses in
# LibTorch's archive, so its order varies from run to run: tensors are compared as a multiset of byte strings.
import zipfile,sys,hashlib,collections
def tensors(p):
    z=zipfile.ZipFile(p)
    return collections.Counter(hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist() if '/data/' in n and not n.endswith('.pkl'))
a,b=tensors(sys.argv[1]),tensors(sys.argv[2])
same=sum((a&b).values())
print(f"{sys.argv[1]} vs {sys.argv[2]}: {sum(a.values())} tensors, {sum(a.values())-same} without a bitwise-equal partner")
sys.exit(0 if a==b else 1)
