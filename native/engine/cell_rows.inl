// The cells' pointwise rows (cell.h), written once over a vector traits type V in the vocabulary
// of kernels/vector_math.inl and instantiated per ISA (cell_kernels.h). Include it only inside an
// anonymous namespace, after vector_math.inl and the definition of V: everything here must keep
// internal linkage (see the linkage note in kernels/kernels.h; so no std::min and the like).
//
// A row function makes one pass over a row's hidden units, a vector of them at a time: it loads
// each operand once, keeps the gates in registers and stores each result once. A row's last
// units, when H is not a multiple of the width, go through the same arithmetic in a partial
// vector (fill lanes are never stored), so every unit gets the same bits wherever it lies and
// whichever thread runs its row.

// sigmoid(x) = 1 / (1 + e^-x). ExpV clamps its argument, so the result is in [0, 1] for any x
// and keeps its relative accuracy where it is tiny (x << 0). NaN stays NaN, as in TanhV.
template <class V>
inline typename V::R SigmoidV(typename V::R x) {
  const typename V::R one = V::Set1(1.0f);
  return V::Select(V::IsNan(x), x, V::Div(one, V::Add(one, ExpV<V>(V::Sub(V::Set1(0.0f), x)))));
}

// body(j, n) for each vector of a row of H units: n = kWidth units from j, then the rest.
template <class V, class Body>
inline void ForUnits(size_t H, Body&& body) {
  size_t j = 0;
  for (; j + V::kWidth <= H; j += V::kWidth) body(j, V::kWidth);
  if (j < H) body(j, H - j);
}

template <class V>
inline typename V::R LoadUnits(const float* p, size_t n) {
  return n == V::kWidth ? V::Load(p) : V::LoadPartial(p, n, 0.0f);
}

template <class V>
inline void StoreUnits(float* p, size_t n, typename V::R v) {
  if (n == V::kWidth) {
    V::Store(p, v);
  } else {
    V::StorePartial(p, n, v);
  }
}

inline bool RowActive(const uint8_t* active, size_t r) { return active == nullptr || active[r] != 0; }
inline void ZeroUnits(float* p, size_t n) { std::memset(p, 0, n * sizeof(float)); }
inline void CopyUnits(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }

// The input projection of row r from the token table, or null.
inline const float* TableRow(const CellForward& s, size_t r, size_t width) {
  return s.table != nullptr ? s.table + static_cast<size_t>(s.tokens[r]) * width : nullptr;
}

// h' = act(gates + bias (+ table row)).
template <class V, bool kRelu>
void ElmanForwardRows(const CellForward& s) {
  using R = typename V::R;
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    float* y = s.y + r * s.y_ld;
    if (!RowActive(s.active, r)) {
      ZeroUnits(y, H);
      continue;
    }
    const float* pre = s.gates + r * s.gates_ld;
    const float* in = TableRow(s, r, H);
    float* h = s.h + r * H;
    ForUnits<V>(H, [&](size_t j, size_t n) {
      R x = V::Add(LoadUnits<V>(pre + j, n), LoadUnits<V>(s.bias + j, n));
      if (in != nullptr) x = V::Add(x, LoadUnits<V>(in + j, n));
      // Max returns its second operand when one is NaN: relu(NaN) stays NaN.
      const R a = kRelu ? V::Max(V::Set1(0.0f), x) : TanhV<V>(x);
      StoreUnits<V>(h + j, n, a);
      StoreUnits<V>(y + j, n, a);
    });
  }
}

// dpre = dh * act'(pre), from h = act(pre); dh_prev = 0 (all of it goes through W_hh).
template <class V, bool kRelu>
void ElmanBackwardRows(const CellBackward& s) {
  using R = typename V::R;
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    const float* dh = s.dh + r * H;
    float* dg = s.dgates_in + r * s.gates_ld;
    float* dh_prev = s.dh_prev + r * H;
    if (!RowActive(s.active, r)) {
      ZeroUnits(dg, H);
      CopyUnits(dh_prev, dh, H);
      continue;
    }
    const float* h = s.h + r * s.h_ld;
    ForUnits<V>(H, [&](size_t j, size_t n) {
      const R d = LoadUnits<V>(dh + j, n);
      const R hv = LoadUnits<V>(h + j, n);
      const R g = kRelu ? V::Select(V::Less(V::Set1(0.0f), hv), d, V::Set1(0.0f))
                        : V::Mul(d, V::Sub(V::Set1(1.0f), V::Mul(hv, hv)));
      StoreUnits<V>(dg + j, n, g);
      StoreUnits<V>(dh_prev + j, n, V::Set1(0.0f));
    });
  }
}

// [i f g o] = gates + bias (+ table row); c' = f c + i g; h' = o tanh(c'). Keeps the activated
// gates in place of the pre-activations and c' in saved_c.
template <class V>
void LstmForwardRows(const CellForward& s) {
  using R = typename V::R;
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    float* y = s.y + r * s.y_ld;
    float* c = s.c + r * H;
    float* saved_c = s.saved_c + r * H;
    if (!RowActive(s.active, r)) {
      ZeroUnits(y, H);
      CopyUnits(saved_c, c, H);
      continue;
    }
    float* g = s.gates + r * s.gates_ld;
    const float* in = TableRow(s, r, 4 * H);
    float* h = s.h + r * H;
    ForUnits<V>(H, [&](size_t j, size_t n) {
      auto pre = [&](size_t block) {
        const size_t at = block * H + j;
        R x = V::Add(LoadUnits<V>(g + at, n), LoadUnits<V>(s.bias + at, n));
        if (in != nullptr) x = V::Add(x, LoadUnits<V>(in + at, n));
        return x;
      };
      const R i = SigmoidV<V>(pre(0));
      const R f = SigmoidV<V>(pre(1));
      const R gg = TanhV<V>(pre(2));
      const R o = SigmoidV<V>(pre(3));
      const R cn = V::Add(V::Mul(f, LoadUnits<V>(c + j, n)), V::Mul(i, gg));
      const R hn = V::Mul(o, TanhV<V>(cn));
      StoreUnits<V>(g + j, n, i);
      StoreUnits<V>(g + H + j, n, f);
      StoreUnits<V>(g + 2 * H + j, n, gg);
      StoreUnits<V>(g + 3 * H + j, n, o);
      StoreUnits<V>(c + j, n, cn);
      StoreUnits<V>(saved_c + j, n, cn);
      StoreUnits<V>(h + j, n, hn);
      StoreUnits<V>(y + j, n, hn);
    });
  }
}

template <class V>
void LstmBackwardRows(const CellBackward& s) {
  using R = typename V::R;
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    const float* dh = s.dh + r * H;
    const float* dc = s.dc + r * H;
    float* dg = s.dgates_in + r * s.gates_ld;
    float* dh_prev = s.dh_prev + r * H;
    float* dc_prev = s.dc_prev + r * H;
    if (!RowActive(s.active, r)) {
      ZeroUnits(dg, 4 * H);
      CopyUnits(dh_prev, dh, H);
      CopyUnits(dc_prev, dc, H);
      continue;
    }
    const float* gates = s.gates + r * s.gates_ld;
    const float* c = s.c + r * H;
    const float* c_prev = s.c_prev + r * s.c_prev_ld;
    ForUnits<V>(H, [&](size_t j, size_t n) {
      const R one = V::Set1(1.0f);
      const R i = LoadUnits<V>(gates + j, n);
      const R f = LoadUnits<V>(gates + H + j, n);
      const R g = LoadUnits<V>(gates + 2 * H + j, n);
      const R o = LoadUnits<V>(gates + 3 * H + j, n);
      const R d = LoadUnits<V>(dh + j, n);
      const R tc = TanhV<V>(LoadUnits<V>(c + j, n));
      const R dct = V::Add(LoadUnits<V>(dc + j, n), V::Mul(V::Mul(d, o), V::Sub(one, V::Mul(tc, tc))));
      StoreUnits<V>(dg + j, n, V::Mul(V::Mul(dct, g), V::Mul(i, V::Sub(one, i))));
      StoreUnits<V>(dg + H + j, n, V::Mul(V::Mul(dct, LoadUnits<V>(c_prev + j, n)), V::Mul(f, V::Sub(one, f))));
      StoreUnits<V>(dg + 2 * H + j, n, V::Mul(V::Mul(dct, i), V::Sub(one, V::Mul(g, g))));
      StoreUnits<V>(dg + 3 * H + j, n, V::Mul(V::Mul(d, tc), V::Mul(o, V::Sub(one, o))));
      StoreUnits<V>(dc_prev + j, n, V::Mul(dct, f));
      StoreUnits<V>(dh_prev + j, n, V::Set1(0.0f));
    });
  }
}

// [r z] = sigmoid(in + rec), n = tanh(in_n + r rec_n), h' = (1 - z) n + z h, with
// in = (table row or gates) + b_ih and rec = recurrent + b_hh. Keeps [r z n] in gates and rec_n.
template <class V>
void GruForwardRows(const CellForward& s) {
  using R = typename V::R;
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    float* y = s.y + r * s.y_ld;
    if (!RowActive(s.active, r)) {
      ZeroUnits(y, H);
      continue;
    }
    float* g = s.gates + r * s.gates_ld;
    const float* table_row = TableRow(s, r, 3 * H);
    const float* in = table_row != nullptr ? table_row : g;
    const float* rec = s.recurrent + r * s.gates_ld;
    float* hn_row = s.saved_hn + r * H;
    float* h = s.h + r * H;
    ForUnits<V>(H, [&](size_t j, size_t n) {
      auto input = [&](size_t block) {
        const size_t at = block * H + j;
        return V::Add(LoadUnits<V>(in + at, n), LoadUnits<V>(s.bias + at, n));
      };
      auto recurrent = [&](size_t block) {
        const size_t at = block * H + j;
        return V::Add(LoadUnits<V>(rec + at, n), LoadUnits<V>(s.bias_hh + at, n));
      };
      const R rg = SigmoidV<V>(V::Add(input(0), recurrent(0)));
      const R z = SigmoidV<V>(V::Add(input(1), recurrent(1)));
      const R hn = recurrent(2);
      const R nv = TanhV<V>(V::Add(input(2), V::Mul(rg, hn)));
      const R hv = V::Add(V::Mul(V::Sub(V::Set1(1.0f), z), nv), V::Mul(z, LoadUnits<V>(h + j, n)));
      StoreUnits<V>(g + j, n, rg);
      StoreUnits<V>(g + H + j, n, z);
      StoreUnits<V>(g + 2 * H + j, n, nv);
      StoreUnits<V>(hn_row + j, n, hn);
      StoreUnits<V>(h + j, n, hv);
      StoreUnits<V>(y + j, n, hv);
    });
  }
}

template <class V>
void GruBackwardRows(const CellBackward& s) {
  using R = typename V::R;
  const size_t H = s.hidden;
  for (size_t r = 0; r < s.rows; ++r) {
    const float* dh = s.dh + r * H;
    float* dg_in = s.dgates_in + r * s.gates_ld;
    float* dg_rec = s.dgates_rec + r * s.gates_ld;
    float* dh_prev = s.dh_prev + r * H;
    if (!RowActive(s.active, r)) {
      ZeroUnits(dg_in, 3 * H);
      ZeroUnits(dg_rec, 3 * H);
      CopyUnits(dh_prev, dh, H);
      continue;
    }
    const float* gates = s.gates + r * s.gates_ld;
    const float* hn = s.saved_hn + r * H;
    const float* h_prev = s.h_prev + r * s.h_prev_ld;
    ForUnits<V>(H, [&](size_t j, size_t n) {
      const R one = V::Set1(1.0f);
      const R rg = LoadUnits<V>(gates + j, n);
      const R z = LoadUnits<V>(gates + H + j, n);
      const R nv = LoadUnits<V>(gates + 2 * H + j, n);
      const R d = LoadUnits<V>(dh + j, n);
      const R dn = V::Mul(V::Mul(d, V::Sub(one, z)), V::Sub(one, V::Mul(nv, nv)));
      const R dr = V::Mul(V::Mul(dn, LoadUnits<V>(hn + j, n)), V::Mul(rg, V::Sub(one, rg)));
      const R dz = V::Mul(V::Mul(d, V::Sub(LoadUnits<V>(h_prev + j, n), nv)), V::Mul(z, V::Sub(one, z)));
      StoreUnits<V>(dg_in + j, n, dr);
      StoreUnits<V>(dg_in + H + j, n, dz);
      StoreUnits<V>(dg_in + 2 * H + j, n, dn);
      StoreUnits<V>(dg_rec + j, n, dr);
      StoreUnits<V>(dg_rec + H + j, n, dz);
      StoreUnits<V>(dg_rec + 2 * H + j, n, V::Mul(dn, rg));
      StoreUnits<V>(dh_prev + j, n, V::Mul(d, z));
    });
  }
}

static_assert(static_cast<int>(CellKind::kTanh) == 0 && static_cast<int>(CellKind::kRelu) == 1 &&
                  static_cast<int>(CellKind::kLstm) == 2 && static_cast<int>(CellKind::kGru) == 3,
              "the tables below are in CellKind order");

template <class V>
constexpr CellKernels MakeCellKernels() {
  return {{&ElmanForwardRows<V, false>, &ElmanForwardRows<V, true>, &LstmForwardRows<V>, &GruForwardRows<V>},
          {&ElmanBackwardRows<V, false>, &ElmanBackwardRows<V, true>, &LstmBackwardRows<V>, &GruBackwardRows<V>}};
}
