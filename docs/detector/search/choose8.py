"""choose.py's rule over grid8.py's output (runs/grid8.log): the most synthetic-crowd faces subject to
>= 99% of the labelled training-photo faces, <= 21 false alarms on the real training pictures and
<= 15 on the 300 crowds; ties (within 3 crowd faces) go to the cheaper fine pass, then the fewer false alarms."""

rows = [ln.split() for ln in open("runs/grid8.log")]
out = []
for r in rows:
    v = list(map(int, r[6:]))
    syn, ph, ud, mt = v[0:3], v[3:6], v[6:9], v[9:12]
    fa = ph[2] + ud[2] + mt[2]
    ok = ph[1] / ph[0] >= 0.99 and fa <= 21 and syn[2] <= 15
    out.append((ok, syn[1], r[:6], syn, ph, ud, mt, fa))
best = max((x[1] for x in out if x[0]), default=0)
out.sort(key=lambda x: (-x[0], -(x[1] >= best - 3), int(x[2][1]), x[7] + x[3][2], -x[1]))
print("coarse fine t_coarse t_fine mirror_gap small_gap | crowds [faces, found, fa] | photos | udacity | mtfl | real fa")
for x in out[:15]:
    print(x)
