// Vectorized exp, tanh and the fused softmax / cross-entropy row, written once over a vector
// "traits" type V and instantiated by each ISA's translation unit. Include it only inside an
// anonymous namespace, after defining V: everything here must keep internal linkage (see the ODR
// note in kernels.h).
//
// V provides: R (register type), M (comparison mask), kWidth, Set1, Load, Store, LoadPartial(p,
// n, fill), StorePartial(p, n, v), Add, Sub, Mul, Div, Fma(a, b, c) = a*b + c, Max, Min, Abs,
// Sqrt, Less(a, b), IsNan(a), Select(m, if_true, if_false), RoundNearest, ScaleByPow2(x, n) = x * 2^n (n
// integral-valued), CopySign(magnitude, sign), KeepFirst(v, n) (zeroes lanes >= n), HorizontalSum,
// HorizontalMax.

// exp(x) for x in float range: 2^n * p(r), r = x - n ln2 split in two parts (Cody-Waite) so r is
// exact, and a degree-7 Taylor polynomial on |r| <= ln2/2 (truncation error < 6e-9 relative).
template <class V>
inline typename V::R ExpV(typename V::R x) {
  using R = typename V::R;
  x = V::Min(V::Max(x, V::Set1(-87.33f)), V::Set1(88.37f));
  const R n = V::RoundNearest(V::Mul(x, V::Set1(1.44269504088896341f)));
  R r = V::Fma(n, V::Set1(-0.693145751953125f), x);
  r = V::Fma(n, V::Set1(-1.428606765330187045e-06f), r);
  R p = V::Set1(1.0f / 5040);
  p = V::Fma(p, r, V::Set1(1.0f / 720));
  p = V::Fma(p, r, V::Set1(1.0f / 120));
  p = V::Fma(p, r, V::Set1(1.0f / 24));
  p = V::Fma(p, r, V::Set1(1.0f / 6));
  p = V::Fma(p, r, V::Set1(0.5f));
  p = V::Fma(p, r, V::Set1(1.0f));
  p = V::Fma(p, r, V::Set1(1.0f));
  return V::ScaleByPow2(p, n);
}

// tanh: below |x| = 0.4 its odd Taylor series through x^13 (error < 1e-9 relative), where
// 1 - 2/(e^{2x} + 1) would lose digits to cancellation; above, that formula, with |x| capped at 10.
// From |x| = 9.0109 on, tanh rounds to 1 in float: 2/(e^{2x} + 1) is then below half an ulp of 1,
// so 1 - it comes out exactly 1, as the scalar kernels' tanhf gives (the cap must stay above
// 9.0109: at 9, every larger input came out 0.99999994 and tanh' = 1 - s^2 never reached 0).
// NaN stays NaN, as in the scalar kernels.
template <class V>
inline typename V::R TanhV(typename V::R x) {
  using R = typename V::R;
  const R a = V::Abs(x);
  const R a2 = V::Mul(a, a);
  R p = V::Set1(21844.0f / 6081075);
  p = V::Fma(p, a2, V::Set1(-1382.0f / 155925));
  p = V::Fma(p, a2, V::Set1(62.0f / 2835));
  p = V::Fma(p, a2, V::Set1(-17.0f / 315));
  p = V::Fma(p, a2, V::Set1(2.0f / 15));
  p = V::Fma(p, a2, V::Set1(-1.0f / 3));
  const R small = V::Fma(V::Mul(p, a2), a, a);
  const R e = ExpV<V>(V::Mul(V::Set1(2.0f), V::Min(a, V::Set1(10.0f))));
  const R large = V::Sub(V::Set1(1.0f), V::Div(V::Set1(2.0f), V::Add(e, V::Set1(1.0f))));
  const R y = V::CopySign(V::Select(V::Less(a, V::Set1(0.4f)), small, large), x);
  return V::Select(V::IsNan(x), x, y);
}

template <class V>
void TanhInplace(float* x, size_t n) {
  size_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) V::Store(x + i, TanhV<V>(V::Load(x + i)));
  if (i < n) V::StorePartial(x + i, n - i, TanhV<V>(V::LoadPartial(x + i, n - i, 0.0f)));
}

template <class V>
float RowMax(const float* z, size_t k) {
  typename V::R m = V::Set1(-3.402823466e38f);
  size_t i = 0;
  for (; i + V::kWidth <= k; i += V::kWidth) m = V::Max(m, V::Load(z + i));
  if (i < k) m = V::Max(m, V::LoadPartial(z + i, k - i, -3.402823466e38f));
  return V::HorizontalMax(m);
}

// z <- exp((z - max) * inv_t) in place; returns the sum of the new values.
template <class V>
float ExpShiftInplace(float* z, size_t k, float max, float inv_t) {
  using R = typename V::R;
  const R shift = V::Set1(max), scale = V::Set1(inv_t);
  R sum = V::Set1(0.0f);
  size_t i = 0;
  for (; i + V::kWidth <= k; i += V::kWidth) {
    const R e = ExpV<V>(V::Mul(V::Sub(V::Load(z + i), shift), scale));
    V::Store(z + i, e);
    sum = V::Add(sum, e);
  }
  if (i < k) {
    // Padding lanes hold max, so they contribute exp(0) = 1; masked out before summing.
    const R e = ExpV<V>(V::Mul(V::Sub(V::LoadPartial(z + i, k - i, max), shift), scale));
    V::StorePartial(z + i, k - i, e);
    sum = V::Add(sum, V::KeepFirst(e, k - i));
  }
  return V::HorizontalSum(sum);
}

template <class V>
void ScaleInplace(float* z, size_t k, float factor) {
  const typename V::R f = V::Set1(factor);
  size_t i = 0;
  for (; i + V::kWidth <= k; i += V::kWidth) V::Store(z + i, V::Mul(V::Load(z + i), f));
  if (i < k) V::StorePartial(z + i, k - i, V::Mul(V::LoadPartial(z + i, k - i, 0.0f), f));
}

template <class V>
double SoftmaxXentRow(float* z, size_t k, int32_t target, float scale) {
  if (target < 0) {
    for (size_t i = 0; i < k; ++i) z[i] = 0.0f;
    return 0.0;
  }
  const float max = RowMax<V>(z, k);
  const float shifted_target = z[target] - max;
  const float sum = ExpShiftInplace<V>(z, k, max, 1.0f);
  ScaleInplace<V>(z, k, scale / sum);
  z[target] -= scale;
  return __builtin_log(static_cast<double>(sum)) - static_cast<double>(shifted_target);
}

template <class V>
void SoftmaxRow(float* z, size_t k, float inv_temperature) {
  const float max = RowMax<V>(z, k);
  const float sum = ExpShiftInplace<V>(z, k, max, inv_temperature);
  ScaleInplace<V>(z, k, 1.0f / sum);
}

// y[i] += alpha * x[i] (the SGD update, the clipping factor folded into alpha) with x[i] taking
// the old y[i], so that a refused update can be undone bit for bit; returns whether every new
// y[i] is finite (r - r is 0 for a finite r and NaN otherwise, and a sum of zeros stays 0).
template <class V>
bool ScaledAddSwap(float* y, float* x, float alpha, size_t n) {
  using R = typename V::R;
  constexpr size_t W = V::kWidth;
  const R a = V::Set1(alpha);
  R a0 = V::Set1(0.0f), a1 = V::Set1(0.0f);
  size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const R y0 = V::Load(y + i), y1 = V::Load(y + i + W);
    const R r0 = V::Fma(a, V::Load(x + i), y0), r1 = V::Fma(a, V::Load(x + i + W), y1);
    V::Store(y + i, r0);
    V::Store(y + i + W, r1);
    V::Store(x + i, y0);
    V::Store(x + i + W, y1);
    a0 = V::Add(a0, V::Sub(r0, r0));
    a1 = V::Add(a1, V::Sub(r1, r1));
  }
  for (; i < n; i += W) {
    const size_t m = n - i < W ? n - i : W;
    const R y0 = V::LoadPartial(y + i, m, 0.0f);
    const R r0 = V::Fma(a, V::LoadPartial(x + i, m, 0.0f), y0);
    V::StorePartial(y + i, m, r0);
    V::StorePartial(x + i, m, y0);
    a0 = V::Add(a0, V::Sub(r0, r0));
  }
  return V::HorizontalSum(V::Add(a0, a1)) == 0.0f;
}

// One pass of a stateful optimizer rule (kernels.h). Every product goes into an explicit Fma, a
// Div, a Sqrt or another Mul, never into an Add or Sub: the compiler then has no multiply-add it
// could contract into an FMA in one pass and not in the other, and the writing pass stores the
// bits the checking pass checked.
template <class V, StatefulRule kRule, bool kWrite>
bool StatefulPass(const RuleCoefficients& c, float* p, const float* g, float* s1, float* s2, size_t n) {
  using R = typename V::R;
  constexpr size_t W = V::kWidth;
  constexpr bool kAdam = kRule == StatefulRule::kAdam;
  const R k = V::Set1(c.k), lr = V::Set1(c.lr), neg_lr = V::Set1(-c.lr), eps = V::Set1(c.eps);
  const R decay1 = V::Set1(kRule == StatefulRule::kRmsprop ? c.rho : kAdam ? c.beta1 : c.momentum);
  const R rest1 = V::Set1(kRule == StatefulRule::kRmsprop ? 1.0f - c.rho : 1.0f - c.beta1);
  const R decay2 = V::Set1(c.beta2), rest2 = V::Set1(1.0f - c.beta2), c1 = V::Set1(c.c1), c2 = V::Set1(c.c2);
  R bad = V::Set1(0.0f);
  for (size_t i = 0; i < n; i += W) {
    const size_t m = n - i < W ? n - i : W;
    const auto load = [&](const float* x) { return m == W ? V::Load(x + i) : V::LoadPartial(x + i, m, 0.0f); };
    const auto store = [&](float* x, R v) { m == W ? V::Store(x + i, v) : V::StorePartial(x + i, m, v); };
    const R P = load(p), G = V::Mul(k, load(g)), S1 = load(s1);
    R np, ns1, ns2 = V::Set1(0.0f);
    if constexpr (kRule == StatefulRule::kMomentum) {
      ns1 = V::Fma(decay1, S1, G);
      np = V::Fma(neg_lr, ns1, P);
    } else if constexpr (kRule == StatefulRule::kNesterov) {
      ns1 = V::Fma(decay1, S1, G);
      np = V::Fma(neg_lr, V::Fma(decay1, ns1, G), P);
    } else if constexpr (kRule == StatefulRule::kAdagrad || kRule == StatefulRule::kRmsprop) {
      ns1 = kRule == StatefulRule::kAdagrad ? V::Fma(G, G, S1) : V::Fma(V::Mul(rest1, G), G, V::Mul(decay1, S1));
      np = V::Sub(P, V::Div(V::Mul(lr, G), V::Add(V::Sqrt(ns1), eps)));
    } else {
      ns1 = V::Fma(rest1, G, V::Mul(decay1, S1));
      ns2 = V::Fma(V::Mul(rest2, G), G, V::Mul(decay2, load(s2)));
      np = V::Sub(P, V::Div(V::Mul(lr, V::Mul(ns1, c1)), V::Add(V::Sqrt(V::Mul(ns2, c2)), eps)));
    }
    if constexpr (kWrite) {
      store(p, np);
      store(s1, ns1);
      if constexpr (kAdam) store(s2, ns2);
    } else {
      // x - x is 0 for a finite x and NaN otherwise; lanes past n are left out.
      const R z = V::Add(V::Add(V::Sub(np, np), V::Sub(ns1, ns1)), V::Sub(ns2, ns2));
      bad = V::Add(bad, V::KeepFirst(z, m));
    }
  }
  return kWrite || V::HorizontalSum(bad) == 0.0f;
}

template <class V, StatefulRule kRule>
bool StatefulPassOf(const RuleCoefficients& c, bool write, float* p, const float* g, float* s1, float* s2, size_t n) {
  return write ? StatefulPass<V, kRule, true>(c, p, g, s1, s2, n) : StatefulPass<V, kRule, false>(c, p, g, s1, s2, n);
}

template <class V>
bool StatefulUpdate(const RuleCoefficients& c, bool write, float* p, const float* g, float* s1, float* s2, size_t n) {
  switch (c.rule) {
    case StatefulRule::kMomentum: return StatefulPassOf<V, StatefulRule::kMomentum>(c, write, p, g, s1, s2, n);
    case StatefulRule::kNesterov: return StatefulPassOf<V, StatefulRule::kNesterov>(c, write, p, g, s1, s2, n);
    case StatefulRule::kAdagrad: return StatefulPassOf<V, StatefulRule::kAdagrad>(c, write, p, g, s1, s2, n);
    case StatefulRule::kRmsprop: return StatefulPassOf<V, StatefulRule::kRmsprop>(c, write, p, g, s1, s2, n);
    case StatefulRule::kAdam: return StatefulPassOf<V, StatefulRule::kAdam>(c, write, p, g, s1, s2, n);
  }
  return false;
}

// sum of x[i]^2: vector lanes of float partial sums over blocks short enough to stay accurate, the
// blocks added in double in a fixed order. A block whose float sum overflows is summed again in
// double: an exploding but finite gradient (|g| > 1e19) must be clipped, not refused.
template <class V>
double SumSquares(const float* x, size_t n) {
  using R = typename V::R;
  constexpr size_t W = V::kWidth, kBlock = 1024;
  double total = 0;
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t end = begin + kBlock < n ? begin + kBlock : n;
    R a0 = V::Set1(0.0f), a1 = V::Set1(0.0f);
    size_t i = begin;
    for (; i + 2 * W <= end; i += 2 * W) {
      const R x0 = V::Load(x + i), x1 = V::Load(x + i + W);
      a0 = V::Fma(x0, x0, a0);
      a1 = V::Fma(x1, x1, a1);
    }
    for (; i + W <= end; i += W) {
      const R x0 = V::Load(x + i);
      a0 = V::Fma(x0, x0, a0);
    }
    if (i < end) {
      const R x0 = V::LoadPartial(x + i, end - i, 0.0f);
      a0 = V::Fma(x0, x0, a0);
    }
    double block = V::HorizontalSum(V::Add(a0, a1));
    if (!__builtin_isfinite(block)) {
      block = 0;
      for (i = begin; i < end; ++i) block += static_cast<double>(x[i]) * x[i];
    }
    total += block;
  }
  return total;
}

// True when no x[i] is NaN or infinite: x - x is 0 for every finite x and NaN otherwise, and a
// sum of zeros stays exactly 0 while a NaN term makes it NaN.
template <class V>
bool AllFinite(const float* x, size_t n) {
  using R = typename V::R;
  constexpr size_t W = V::kWidth;
  R a0 = V::Set1(0.0f), a1 = V::Set1(0.0f);
  size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const R x0 = V::Load(x + i), x1 = V::Load(x + i + W);
    a0 = V::Add(a0, V::Sub(x0, x0));
    a1 = V::Add(a1, V::Sub(x1, x1));
  }
  for (; i + W <= n; i += W) {
    const R x0 = V::Load(x + i);
    a0 = V::Add(a0, V::Sub(x0, x0));
  }
  if (i < n) {
    const R x0 = V::LoadPartial(x + i, n - i, 0.0f);
    a0 = V::Add(a0, V::Sub(x0, x0));
  }
  return V::HorizontalSum(V::Add(a0, a1)) == 0.0f;
}
