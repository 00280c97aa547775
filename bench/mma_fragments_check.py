"""bench/mma_fragments_check.py - checks, on the CPU, the fragment bookkeeping of ds_heads_mma (branch
wip/mma-attention): which lane holds which K / V / q / p elements for mma.m16n8k16 and movmatrix, as the
PTX ISA documents their layouts. Index math only (no bf16 rounding). python3 bench/mma_fragments_check.py"""
import numpy as np
rng = np.random.default_rng(1)
GU, Lr, c0 = 3, 13, 0           # 13 valid keys of the chunk (3 masked)
K = rng.standard_normal((16, 128)); V = rng.standard_normal((16, 128)); Q = rng.standard_normal((GU, 128))
lanes = [(l >> 2, l & 3) for l in range(32)]
# registers: R.k[s] = (x: 2 halves, y: 2 halves) as tuples of values
def rk(g, t):
    k = {}
    for s in range(8):
        row = K[g]; k[s] = ((row[16*s+4*t], row[16*s+4*t+1]), (row[16*s+4*t+2], row[16*s+4*t+3]))
        row = K[g+8]; k[8+s] = ((row[16*s+4*t], row[16*s+4*t+1]), (row[16*s+4*t+2], row[16*s+4*t+3]))
    return k
def rv(g, t):
    v = {}
    rows = [2*t, 2*t+1, 2*t+8, 2*t+9]
    for i in range(4):
        for h in range(2):
            x = V[rows[i]][8*g+64*h: 8*g+64*h+8]
            v[2*(2*i+h)] = ((x[0], x[1]), (x[2], x[3])); v[2*(2*i+h)+1] = ((x[4], x[5]), (x[6], x[7]))
    return v
def mma(a, b):  # a[lane] = (a0,a1,a2,a3) pairs, b[lane] = (b0,b1) pairs -> D[16][8]
    A = np.zeros((16, 16)); B = np.zeros((16, 8))
    for l, (g, t) in enumerate(lanes):
        a0, a1, a2, a3 = a[l]; b0, b1 = b[l]
        A[g, 2*t:2*t+2] = a0; A[g+8, 2*t:2*t+2] = a1; A[g, 2*t+8:2*t+10] = a2; A[g+8, 2*t+8:2*t+10] = a3
        B[2*t:2*t+2, g] = b0; B[2*t+8:2*t+10, g] = b1
    return A @ B
def cfrag(D):  # per lane (c0,c1,c2,c3)
    return [(D[g, 2*t], D[g, 2*t+1], D[g+8, 2*t], D[g+8, 2*t+1]) for (g, t) in lanes]
def trans(x):  # movmatrix: x[lane] = pair (row g, cols 2t, 2t+1) -> transposed
    M = np.zeros((8, 8))
    for l, (g, t) in enumerate(lanes): M[g, 2*t:2*t+2] = x[l]
    T = M.T
    return [(T[g, 2*t], T[g, 2*t+1]) for (g, t) in lanes]
RK = [rk(g, t) for (g, t) in lanes]; RV = [rv(g, t) for (g, t) in lanes]
S = np.zeros((16, 8))
for s in range(8):
    a = [(RK[l][s][0], RK[l][8+s][0], RK[l][s][1], RK[l][8+s][1]) for l in range(32)]
    b = []
    for (g, t) in lanes:
        if g < GU:
            q = Q[g][16*s+4*t: 16*s+4*t+4]; b.append(((q[0], q[1]), (q[2], q[3])))
        else: b.append(((0, 0), (0, 0)))
    S += mma(a, b)
sc = cfrag(S)
# reference scores
Sref = K @ Q.T   # [16 keys][GU]
assert np.allclose(S[:, :GU], Sref), "scores"
# softmax per head over valid keys
m = np.full(8, -np.inf); p = []
for l, (g, t) in enumerate(lanes):
    v0, v1 = c0+g < Lr, c0+g+8 < Lr
    p.append(None)
M0 = {}; 
for h in range(8):
    vals = [S[k, h] for k in range(16) if c0+k < Lr]; M0[h] = max(vals)
P = np.zeros((16, 8))
for k in range(16):
    for h in range(8):
        P[k, h] = np.exp(S[k, h]-M0[h]) if c0+k < Lr else 0
# per-lane p0..p3 as the kernel computes
pl = []
for (g, t) in lanes:
    pl.append((P[g, 2*t], P[g, 2*t+1], P[g+8, 2*t], P[g+8, 2*t+1]))
ah0 = trans([(x[0], x[1]) for x in pl]); ah2 = trans([(x[2], x[3]) for x in pl])
O = np.zeros((16, 16, 8))
for n in range(16):
    h, e = n >> 3, n & 7; wd = e >> 1
    a = [(ah0[l], (0, 0), ah2[l], (0, 0)) for l in range(32)]
    b = []
    for l, (g, t) in enumerate(lanes):
        wv = []
        for i in range(4):
            x = RV[l][2*(2*i+h) + (wd >> 1)]
            wv.append(x[1] if wd & 1 else x[0])
        half = e & 1
        b0 = (wv[0][half], wv[1][half]); b1 = (wv[2][half], wv[3][half])
        b.append((b0, b1))
    O[n] = mma(a, b)
# the partial o of head g: features 64h + 16t + e <- o[8h+e][0] (col 2t), 64h+16t+8+e <- o[8h+e][1] (col 2t+1)
Oref = P.T @ V   # [8 heads][128]
got = np.zeros((GU, 128))
for l, (g, t) in enumerate(lanes):
    if g >= GU: continue
    for h in range(2):
        for e in range(8):
            D = O[8*h+e]
            got[g, 64*h+16*t+e] = D[g, 2*t]
            got[g, 64*h+16*t+8+e] = D[g, 2*t+1]
assert np.allclose(got, Oref[:GU]), np.abs(got-Oref[:GU]).max()
print("scores and values match; max/sum per head:", [round(M0[h],3) for h in range(GU)])
