"""The selection rule over grid4.py's output (runs/grid4.log): the most synthetic-crowd faces subject to
>= 99% of the labelled training-photo faces, <= 21 false alarms on the real training pictures and <= 15
on the 300 crowds."""

rows = [ln.split() for ln in open("runs/grid4.log")]
out = []
for r in rows:
    v = list(map(int, r[6:]))
    syn, ph, ud, mt = v[0:3], v[3:6], v[6:9], v[9:12]
    ok = ph[1] / ph[0] >= 0.99 and (ph[2] + ud[2] + mt[2]) <= 21 and syn[2] <= 15
    out.append((ok, round(syn[1] / syn[0], 4), r[:6], syn, ph, ud, mt))
out.sort(key=lambda x: (-x[0], -x[1]))
print(
    "coarse fine split(px at coarse) t_coarse t_fine mirror_gap | crowds [faces, found, fa] | photos | udacity | mtfl"
)
for x in out[:12]:
    print(x)
