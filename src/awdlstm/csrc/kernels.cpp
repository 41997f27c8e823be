// Compiled CPU kernels for awdlstm (float32, contiguous tensors).
//
// 1. DropConnect: w * mask / (1 - p) with the mask drawn from a counter-based generator
//    (Philox-4x32-10, the generator PyTorch uses on CUDA) keyed by a seed taken from
//    PyTorch's generator. The mask is a pure function of (seed, index), so the backward
//    recomputes it instead of storing it, and the whole op is one pass over memory.
// 2. The per-step LSTM recurrence with zoneout / recurrent-dropout masks
//    (awdlstm/model/step_lstm.py documents the math): per step one product with W_hh
//    (sgemm or oneDNN, see StepGemm) and one fused pointwise loop, with no Python between steps.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

namespace {

// ---------------------------------------------------------------- Philox-4x32-10
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// One Philox-4x32-10 block: four 32-bit uniforms for counter (c0, c1, 0, 0) under key (k0, k1).
#define AWD_PHILOX_BLOCK(c0, c1, c2, c3, k0, k1)                                        \
  for (int r_ = 0; r_ < 10; ++r_) {                                                    \
    const uint64_t p0_ = (uint64_t)kPhiloxM0 * c0, p1_ = (uint64_t)kPhiloxM1 * c2;     \
    const uint32_t n0_ = (uint32_t)(p1_ >> 32) ^ c1 ^ (k0 + r_ * kPhiloxW0);           \
    const uint32_t n2_ = (uint32_t)(p0_ >> 32) ^ c3 ^ (k1 + r_ * kPhiloxW1);           \
    c1 = (uint32_t)p1_; c3 = (uint32_t)p0_; c0 = n0_; c2 = n2_;                        \
  }

// out[e] = x[e] * (u_e >= threshold ? scale : 0) with u_e a 16-bit uniform. Elements come
// in fixed chunks of 8 * 128: element c*1024 + lane*128 + j takes 16-bit half `lane` of
// Philox block c*128 + j, so the mask depends on (seed, e) only, not on how the chunks are
// split between threads. Eight elements per block halves the generator work of 32-bit
// uniforms; the price is p rounded to a multiple of 2^-16.
constexpr int64_t kCtr = 128, kChunk = 8 * kCtr;

void masked_scale_chunks(const float* __restrict__ x, float* __restrict__ out, int64_t n, uint64_t seed,
                         uint32_t threshold, float scale, int64_t c0, int64_t c1) {
  const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  alignas(64) uint16_t u[8][kCtr];
  for (int64_t c = c0; c < c1; ++c) {
#pragma omp simd
    for (int64_t j = 0; j < kCtr; ++j) {
      const uint64_t ctr = (uint64_t)(c * kCtr + j);
      uint32_t x0 = (uint32_t)ctr, x1 = (uint32_t)(ctr >> 32), x2 = 0, x3 = 0;
      AWD_PHILOX_BLOCK(x0, x1, x2, x3, k0, k1)
      u[0][j] = (uint16_t)x0; u[1][j] = (uint16_t)(x0 >> 16);
      u[2][j] = (uint16_t)x1; u[3][j] = (uint16_t)(x1 >> 16);
      u[4][j] = (uint16_t)x2; u[5][j] = (uint16_t)(x2 >> 16);
      u[6][j] = (uint16_t)x3; u[7][j] = (uint16_t)(x3 >> 16);
    }
    for (int lane = 0; lane < 8; ++lane) {
      const int64_t lb = c * kChunk + lane * kCtr;
      const int64_t len = std::min<int64_t>(kCtr, n - lb);
      const uint16_t* ul = u[lane];
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) out[lb + j] = x[lb + j] * (ul[j] >= threshold ? scale : 0.0f);
    }
  }
}

void masked_scale(const float* x, float* out, int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  at::parallel_for(0, (n + kChunk - 1) / kChunk, 64, [=](int64_t c0, int64_t c1) {
    masked_scale_chunks(x, out, n, seed, threshold, scale, c0, c1);
  });
}

// ---------------------------------------------------------------- LSTM step kernels
// Under -ffast-math an exp that overflows gives NaN, not inf, so the arguments are clamped
// where the result is already exact in float32: σ(±80) is 1 or 1.8e-35 (the true σ(-x) below
// that is smaller still and its gradient as small), tanh(±15) is ±1. A cell state of -45 is
// enough to overflow exp(-2c) unclamped.
static inline float sigm(float x) { return 1.0f / (1.0f + std::exp(-std::min(std::max(x, -80.f), 80.f))); }
static inline float tanh_(float x) {
  x = std::min(std::max(x, -15.f), 15.f);
  return 2.0f / (1.0f + std::exp(-2.0f * x)) - 1.0f;
}

using OptT = std::optional<at::Tensor>;
using OptD = std::optional<double>;

// A mask as the loops read it: row(t) points at B*H floats. A per-step (T, B, H) mask
// moves one row per step; a per-sequence (B, H) mask, a constant or an absent mask (its
// neutral value) stays put. Constants are materialized once so the inner loops have no
// branches and vectorize.
struct MaskRows {
  at::Tensor held;
  const float* p = nullptr;
  int64_t step = 0;
  bool present = false;
  MaskRows(const OptT& m, OptD constant, float neutral, int64_t B, int64_t H, const at::TensorOptions& opt) {
    if (m.has_value() && m->defined()) {
      TORCH_CHECK(m->scalar_type() == at::kFloat, "mask must be float32");
      held = m->contiguous();
      step = held.dim() == 3 ? B * H : 0;
      present = true;
    } else {
      present = constant.has_value();
      held = at::full({B, H}, constant.has_value() ? *constant : neutral, opt);
    }
    p = held.data_ptr<float>();
  }
  const float* row(int64_t t) const { return p + t * step; }
};

struct StepMasks {
  MaskRows u, cell, zc, zh, zo, gal;
  StepMasks(OptT m_u, OptD m_u_c, OptT m_cell, OptD m_cell_c, OptT z_c, OptD z_c_c, OptT z_h, OptD z_h_c,
            OptT z_o, OptD z_o_c, OptT m_gal, int64_t B, int64_t H, const at::TensorOptions& opt)
      : u(m_u, m_u_c, 1.f, B, H, opt), cell(m_cell, m_cell_c, 1.f, B, H, opt), zc(z_c, z_c_c, 0.f, B, H, opt),
        zh(z_h, z_h_c, 0.f, B, H, opt), zo(z_o, z_o_c, 0.f, B, H, opt), gal(m_gal, std::nullopt, 1.f, B, H, opt) {}
};

// y = x @ w^T for one fixed w (N, K) and many x (B, K): the per-step products. Two ways:
// - oneDNN's inner product on a weight reordered once per call, for large weights: about
//   1.7x faster than sgemm at B 20, 1150 x 4600 (what PyTorch's fused LSTM gains from the
//   same library);
// - the BLAS sgemm (MKL in the wheel) straight into the caller's buffer, for
//   the rest: at 200 x 200 or thinner a oneDNN call costs 40-50 us whatever its size, where
//   the product itself takes a few, so below kPackMin weight entries the call's overhead
//   decides. sgemm also accumulates (beta 1) where the caller adds the product.
// w may be any view whose rows or columns are contiguous (a transpose or a block of
// columns needs no copy). Without oneDNN, every weight takes the sgemm path.
constexpr int64_t kPackMin = 1 << 20;

// The wheel's BLAS (MKL on x86) exports the Fortran sgemm; declared weak, so a build of
// torch without it loads this module all the same and StepGemm falls back to at::mm.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc) __attribute__((weak));

class StepGemm {
 public:
  StepGemm(const at::Tensor& w, int64_t batch) : n_(w.size(0)), k_(w.size(1)) {
    if (n_ * k_ >= kPackMin && linear_op() && reorder_op()) {
      packed_ = reorder_op()->call(w.contiguous(), batch);
      return;
    }
    // Column-major BLAS sees the row-major x (B, K) as x^T (K x B) and the output (B, N)
    // as y^T (N x B) = w · x^T: w row-major (stride (ld, 1)) is w^T to BLAS, so it is
    // transposed back; w with stride (1, ld) is w itself.
    w_ = w.stride(1) == 1 || w.stride(0) == 1 ? w : w.contiguous();
    row_major_ = w_.stride(1) == 1;
    ld_ = row_major_ ? std::max<int64_t>(w_.stride(0), k_) : std::max<int64_t>(w_.stride(1), n_);
  }
  // out (B, N) = x (B, K) @ w^T + beta * out, both contiguous.
  void into(const float* x, int64_t B, float* out, float beta = 0.f) const {
    if (packed_.defined() || !sgemm_) {
      const auto xt = at::from_blob(const_cast<float*>(x), {B, k_}, at::kFloat);
      const auto y = packed_.defined() ? linear_op()->call(xt, packed_, std::nullopt, "none",
                                                           c10::List<std::optional<at::Scalar>>(), std::nullopt)
                                       : at::mm(xt, w_.t());
      auto o = at::from_blob(out, {B, n_}, at::kFloat);
      if (beta == 0.f) o.copy_(y); else o.mul_(beta).add_(y);
      return;
    }
    const int n = (int)n_, b = (int)B, k = (int)k_, lda = (int)ld_, ldb = (int)k_, ldc = (int)n_;
    const float one = 1.f;
    sgemm_(row_major_ ? "T" : "N", "N", &n, &b, &k, &one, w_.data_ptr<float>(), &lda, x, &ldb, &beta, out, &ldc);
  }
  at::Tensor operator()(const at::Tensor& x) const {
    const auto xc = x.contiguous();
    auto y = at::empty({xc.size(0), n_}, xc.options());
    into(xc.data_ptr<float>(), xc.size(0), y.data_ptr<float>());
    return y;
  }

 private:
  using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                              c10::string_view, c10::List<std::optional<at::Scalar>>,
                              std::optional<c10::string_view>);
  using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
  static const c10::TypedOperatorHandle<LinearFn>* linear_op() {
    static const auto op = find<LinearFn>("mkldnn::_linear_pointwise");
    return op ? &*op : nullptr;
  }
  static const c10::TypedOperatorHandle<ReorderFn>* reorder_op() {
    static const auto op = find<ReorderFn>("mkldnn::_reorder_linear_weight");
    return op ? &*op : nullptr;
  }
  template <typename Fn>
  static std::optional<c10::TypedOperatorHandle<Fn>> find(const char* name) {
    if (!at::hasMKLDNN()) return std::nullopt;
    auto handle = c10::Dispatcher::singleton().findSchema({name, ""});
    if (!handle.has_value()) return std::nullopt;
    return handle->typed<Fn>();
  }
  int64_t n_, k_, ld_ = 0;
  bool row_major_ = true;
  at::Tensor w_, packed_;
};

// Rows per thread of the pointwise loops: parallel only where a step has enough work
// (the AWD layers of 1150 units), since a fork/join costs about as much as 8k elements.
static inline int64_t row_grain(int64_t H) { return std::max<int64_t>(1, 8192 / H); }

// Pointwise forward of rows [b0, b1) of one step: the gates xp + hh (both (B, 4H)) through
// their nonlinearities into `a`, then c_t, tanh(c~_t), h_t and h_t ⊙ m_gal. `ap` holds step
// t-1's gates.
static void forward_rows(int64_t b0, int64_t b1, int64_t H, const float* xp, const float* hh, float* a,
                         const float* ap, const float* cp,
                         const float* hp, const float* mu, const float* mc, const float* zc, const float* zh,
                         const float* zo, const float* gal, float* cn_out, float* tc_out, float* h_out, float* hb) {
  for (int64_t b = b0; b < b1; ++b) {
    float* __restrict__ ab = a + b * 4 * H;
    const float* __restrict__ xb = xp + b * 4 * H;
    const float* __restrict__ hb_ = hh + b * 4 * H;
    const float* __restrict__ opb = ap + b * 4 * H + 3 * H;
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const int64_t j = r + k;
      const float i = sigm(xb[k] + hb_[k]), f = sigm(xb[H + k] + hb_[H + k]),
                  g = tanh_(xb[2 * H + k] + hb_[2 * H + k]), o = sigm(xb[3 * H + k] + hb_[3 * H + k]);
      const float oprev = opb[k];
      ab[k] = i; ab[H + k] = f; ab[2 * H + k] = g; ab[3 * H + k] = o;
      const float cprev = cp[j];
      const float cn = (f * cprev + i * g * mu[j]) * mc[j];
      cn_out[j] = cn + zc[j] * (cprev - cn);
      const float tc = tanh_(cn);
      tc_out[j] = tc;
      const float ht = (o + zo[j] * (oprev - o)) * tc;
      const float h = ht + zh[j] * (hp[j] - ht);
      h_out[j] = h;
      hb[j] = h * gal[j];
    }
  }
}

// Pointwise backward of rows [b0, b1) of one step: the gate pre-activation gradients into
// `dg` (B, 4H) and the carried gradients of c_t, z_h ⊙ dh and z_o ⊙ do' for step t-1.
static void backward_rows(int64_t b0, int64_t b1, int64_t H, const float* a, const float* ap, const float* cp,
                          const float* tcp, const float* gop, const float* mu, const float* mc, const float* zc,
                          const float* zh, const float* zo, const float* gal, const float* hm, float* dhc,
                          float* dcp, float* doc, float* dg) {
  for (int64_t b = b0; b < b1; ++b) {
    const float* __restrict__ ab = a + b * 4 * H;
    const float* __restrict__ opb = ap + b * 4 * H + 3 * H;
    float* __restrict__ dgb = dg + b * 4 * H;
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const int64_t j = r + k;
      const float i = ab[k], f = ab[H + k], g = ab[2 * H + k], o = ab[3 * H + k];
      const float dh = hm[j] * gal[j] + dhc[j] + gop[j];  // total gradient of h_t
      const float dhn = dh * (1.f - zh[j]);                // ... of h~_t
      dhc[j] = dh * zh[j];
      const float tc = tcp[j];
      const float op = o + zo[j] * (opb[k] - o);
      const float dcn = dcp[j] * (1.f - zc[j]) + dhn * op * (1.f - tc * tc);  // of c~_t
      const float dop = dhn * tc;                                           // of o'_t
      const float d_o = dop * (1.f - zo[j]) + doc[j];
      doc[j] = dop * zo[j];
      const float dpre = dcn * mc[j];
      dgb[k] = dpre * mu[j] * g * i * (1.f - i);
      dgb[H + k] = dpre * cp[j] * f * (1.f - f);
      dgb[2 * H + k] = dpre * mu[j] * i * (1.f - g * g);
      dgb[3 * H + k] = d_o * o * (1.f - o);
      dcp[j] = dpre * f + dcp[j] * zc[j];
    }
  }
}

// Forward of StepLSTMFunction. Returns acts (T, B, 4H: i, f, g, o after their
// nonlinearities), cs (T+1, B, H: c_0 .. c_T), ctil (T, B, H: tanh of c~), out (T, B, H).
std::vector<at::Tensor> step_forward(const at::Tensor& xproj, const at::Tensor& w_hh, const at::Tensor& h0,
                                     const at::Tensor& c0, OptT m_u, OptD m_u_c, OptT m_cell, OptD m_cell_c,
                                     OptT z_c, OptD z_c_c, OptT z_h, OptD z_h_c, OptT z_o, OptD z_o_c,
                                     OptT m_gal, OptT gates0) {
  TORCH_CHECK(xproj.is_contiguous() && xproj.scalar_type() == at::kFloat,
              "step_forward: contiguous float32 xproj expected");
  const int64_t T = xproj.size(0), B = xproj.size(1), H = xproj.size(2) / 4, BH = B * H;
  const auto opt = xproj.options();
  const StepMasks M(m_u, m_u_c, m_cell, m_cell_c, z_c, z_c_c, z_h, z_h_c, z_o, z_o_c, m_gal, B, H, opt);
  auto acts = at::empty({T, B, 4 * H}, opt);
  auto cs = at::empty({T + 1, B, H}, opt);
  auto ctil = at::empty({T, B, H}, opt);
  auto out = at::empty({T, B, H}, opt);
  cs[0].copy_(c0);
  const auto h0c = h0.contiguous();
  // Step 0 reads the previous chunk's gates `gates0` (B, 4H; the output gate o_{-1} in its
  // last H columns) when given; without them it has no previous output gate: z_o = 0.
  const auto no_zo = at::zeros({BH}, opt), no_gates = at::zeros({B, 4 * H}, opt);
  const auto g0 = gates0.has_value() ? gates0->contiguous() : no_gates;
  const float* zo0 = gates0.has_value() ? M.zo.row(0) : no_zo.data_ptr<float>();
  const StepGemm recurrent(w_hh, B);  // h (B, H) -> h W_hh^T (B, 4H)
  const auto hin0 = M.gal.present ? h0c.mul(M.gal.held) : h0c;  // h_{t-1} ⊙ m_gal, (B, H)
  auto hbuf = at::empty({B, H}, opt), hh = at::empty({B, 4 * H}, opt);
  float *A = acts.data_ptr<float>(), *C = cs.data_ptr<float>(), *TC = ctil.data_ptr<float>(),
        *O = out.data_ptr<float>(), *hb = hbuf.data_ptr<float>(), *hhp = hh.data_ptr<float>();
  const float* hin = hin0.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    recurrent.into(hin, B, hhp);
    float* a = A + t * B * 4 * H;
    const float* xp = xproj.data_ptr<float>() + t * B * 4 * H;
    const float* ap = t == 0 ? g0.data_ptr<float>() : a - B * 4 * H;  // gates of step t-1
    const float* cp = C + t * BH;
    float *cn_out = C + (t + 1) * BH, *tc_out = TC + t * BH, *h_out = O + t * BH;
    const float* hp = t == 0 ? h0c.data_ptr<float>() : O + (t - 1) * BH;
    const float *mu = M.u.row(t), *mc = M.cell.row(t), *zc = M.zc.row(t), *zh = M.zh.row(t),
                *zo = t == 0 ? zo0 : M.zo.row(t), *gal = M.gal.row(0);
    at::parallel_for(0, B, row_grain(H), [=](int64_t b0, int64_t b1) {
      forward_rows(b0, b1, H, xp, hhp, a, ap, cp, hp, mu, mc, zc, zh, zo, gal, cn_out, tc_out, h_out, hb);
    });
    hin = M.gal.present ? hb : h_out;
  }
  return {acts, cs, ctil, out};
}

// Backward of StepLSTMFunction: returns dgates (T, B, 4H), dh0, dc0. The W_hh gradient is
// one product over all steps, done by the caller.
std::vector<at::Tensor> step_backward(const at::Tensor& grad_out, const at::Tensor& grad_h, const at::Tensor& grad_c,
                                      const at::Tensor& w_hh, const at::Tensor& acts, const at::Tensor& cs,
                                      const at::Tensor& ctil, OptT m_u, OptD m_u_c, OptT m_cell, OptD m_cell_c,
                                      OptT z_c, OptD z_c_c, OptT z_h, OptD z_h_c, OptT z_o, OptD z_o_c,
                                      OptT m_gal, OptT gates0) {
  const int64_t T = acts.size(0), B = acts.size(1), H = acts.size(2) / 4, BH = B * H;
  const auto opt = acts.options();
  const StepMasks M(m_u, m_u_c, m_cell, m_cell_c, z_c, z_c_c, z_h, z_h_c, z_o, z_o_c, m_gal, B, H, opt);
  const auto go = grad_out.contiguous();
  auto dgates = at::empty({T, B, 4 * H}, opt);
  const StepGemm recurrent_t(w_hh.t(), B);  // dgates (B, 4H) -> dgates W_hh (B, H)
  auto dhmm = grad_h.contiguous().clone();  // dgates_{t+1} @ W_hh (grad_h at the last step)
  auto dh_carry = at::zeros({B, H}, opt);   // z_h ⊙ dh_{t+1}: reaches h_t directly
  auto dc = grad_c.contiguous().clone();    // gradient of c_t
  auto do_carry = at::zeros({B, H}, opt);   // z_o ⊙ do'_{t+1}: reaches o_t directly
  const auto ones = at::ones({BH}, opt), no_zo = at::zeros({BH}, opt), no_gates = at::zeros({B, 4 * H}, opt);
  // As in the forward: step 0 reads the carried gates when given. o_{-1} is a constant of
  // this chunk (the state is detached between windows), so no gradient flows into it.
  const auto g0 = gates0.has_value() ? gates0->contiguous() : no_gates;
  const float* zo0 = gates0.has_value() ? M.zo.row(0) : no_zo.data_ptr<float>();
  float *dcp = dc.data_ptr<float>(), *dhc = dh_carry.data_ptr<float>(), *doc = do_carry.data_ptr<float>(),
        *DG = dgates.data_ptr<float>();
  const float *A = acts.data_ptr<float>(), *C = cs.data_ptr<float>(), *TC = ctil.data_ptr<float>(),
              *GO = go.data_ptr<float>();
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* a = A + t * B * 4 * H;
    const float* ap = t == 0 ? g0.data_ptr<float>() : a - B * 4 * H;  // gates of step t-1
    const float *cp = C + t * BH, *tcp = TC + t * BH, *gop = GO + t * BH;
    float* dg = DG + t * B * 4 * H;
    const float *mu = M.u.row(t), *mc = M.cell.row(t), *zc = M.zc.row(t), *zh = M.zh.row(t),
                *zo = t == 0 ? zo0 : M.zo.row(t),
                *gal = t == T - 1 ? ones.data_ptr<float>() : M.gal.row(0);
    const float* hm = dhmm.data_ptr<float>();
    at::parallel_for(0, B, row_grain(H), [=](int64_t b0, int64_t b1) {
      backward_rows(b0, b1, H, a, ap, cp, tcp, gop, mu, mc, zc, zh, zo, gal, hm, dhc, dcp, doc, dg);
    });
    recurrent_t.into(dg, B, dhmm.data_ptr<float>());
  }
  // dh_0 = (dgates_0 @ W_hh) ⊙ m_gal + z_h ⊙ dh_1
  auto dh0 = M.gal.present ? dhmm.mul(M.gal.held).add_(dh_carry) : dhmm.add(dh_carry);
  return {dgates, dh0, dc};
}

// ---------------------------------------------------------------- Mogrifier LSTM
// The batch in as many blocks of rows as there are threads (one block a thread, at least
// kMinBlockRows rows each), fn(b0, b1) per block. Inside the blocks at::parallel_for and
// the BLAS run on one thread: the per-step products are too small to split among threads
// (at B 20 and 512 units a round's product takes microseconds, a fork/join about as long),
// while whole rows split with no communication until the loop ends.
constexpr int64_t kMinBlockRows = 2;
template <typename Fn>
void in_row_blocks(int64_t B, const Fn& fn) {
  const int64_t blocks = at::in_parallel_region() ? 1
                         : std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B / kMinBlockRows));
  if (blocks == 1) return fn(0, B);
  at::parallel_for(0, blocks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c * B / blocks, (c + 1) * B / blocks);
  });
}

// The loops of MogrifierFunction (awdlstm/model/mogrifier.py documents the math). mats are
// Q^1, R^2, Q^3, …, or with `factored` the pairs A^1, B^1, A^2, B^2, … of Q^i = A^i B^i
// (A (rows, k), B (k, cols)): a round's product is then two thin ones, driver B^T A^T, whose
// middle u = driver B^T (T, B, k) is kept for the weight gradients. Each product goes
// through StepGemm; each round's σ and gating and the LSTM cell are one pointwise pass.

// Forward. Returns xs (nq+1, T, B, m: x_t, x^1, x^3, …), hs (nr+1, T, B, n: h_{t-1}, h^2, …),
// xh (T, B, m+n: the last x^i and h^i), acts (T, B, 4n), cs (T+1, B, n), tcs (T, B, n:
// tanh c_t), out (T, B, n), then one (T, B, rows) tensor per round holding its σ, then
// (factored) one (T, B, k) per round holding u.
std::vector<at::Tensor> mogrifier_forward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                          const at::Tensor& w, const at::Tensor& bias,
                                          const std::vector<at::Tensor>& mats, bool factored) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "mogrifier_forward: float32 expected");
  const int64_t f = factored ? 2 : 1;
  const int64_t T = x.size(0), B = x.size(1), m = x.size(2), n = h0.size(1), R = mats.size() / f;
  const int64_t nq = (R + 1) / 2, nr = R / 2, mn = m + n;
  const auto opt = x.options();
  auto xs = at::empty({nq + 1, T, B, m}, opt), hs = at::empty({nr + 1, T, B, n}, opt);
  auto xh = at::empty({T, B, mn}, opt), acts = at::empty({T, B, 4 * n}, opt), gates = at::empty({B, 4 * n}, opt);
  auto cs = at::empty({T + 1, B, n}, opt), tcs = at::empty({T, B, n}, opt), out = at::empty({T, B, n}, opt);
  std::vector<at::Tensor> sig, us;
  std::vector<StepGemm> round_gemm, inner_gemm;
  int64_t widest = 1;
  for (int64_t i = 0; i < R; ++i) {
    const auto& q = mats[f * i];  // Q (rows, cols), or its left factor A (rows, k)
    widest = std::max(widest, q.size(0));
    sig.push_back(at::empty({T, B, q.size(0)}, opt));
    round_gemm.emplace_back(q, B);  // driver (B, cols) -> driver q^T (B, rows); factored: u A^T
    if (factored) {
      us.push_back(at::empty({T, B, q.size(1)}, opt));
      inner_gemm.emplace_back(mats[2 * i + 1], B);  // driver (B, cols) -> u = driver B^T (B, k)
    }
  }
  const StepGemm gates_gemm(w, B);  // [x, h] (B, m+n) -> (B, 4n)
  auto pre_buf = at::empty({B, widest}, opt);  // a round's pre-activation Q h or R x
  float* PP = pre_buf.data_ptr<float>();
  xs[0].copy_(x);
  cs[0].copy_(c0);
  hs[0][0].copy_(h0);
  const auto bc = bias.contiguous();
  const float* bp = bc.data_ptr<float>();
  float *XS = xs.data_ptr<float>(), *HS = hs.data_ptr<float>(), *XH = xh.data_ptr<float>(),
        *A = acts.data_ptr<float>(), *C = cs.data_ptr<float>(), *TC = tcs.data_ptr<float>(), *O = out.data_ptr<float>(),
        *GP = gates.data_ptr<float>();
  auto xrow = [&](int64_t k, int64_t t) { return XS + (k * T + t) * B * m; };
  auto hrow = [&](int64_t k, int64_t t) { return HS + (k * T + t) * B * n; };
  // Rows [b0, b1) through every step (in_row_blocks): every buffer is (·, B, width), so a
  // block's rows are contiguous within a step.
  auto rows_loop = [&](int64_t b0, int64_t b1) {
    const int64_t Bc = b1 - b0;
    for (int64_t t = 0; t < T; ++t) {
      if (t > 0) std::copy(O + (t - 1) * B * n + b0 * n, O + (t - 1) * B * n + b1 * n, hrow(0, t) + b0 * n);
      for (int64_t i = 0; i < R; ++i) {
        const int64_t k = i / 2, rows = mats[f * i].size(0);
        const bool odd_round = i % 2 == 0;  // round i+1: Q gates x (rows m), R gates h (rows n)
        const float* driver = odd_round ? hrow(k, t) + b0 * n : xrow(k + 1, t) + b0 * m;
        float* pp = PP + b0 * widest;  // this block's (Bc, rows) pre-activation
        if (factored) {  // u = driver B^T (Bc, k), then pre = u A^T
          const int64_t kk = mats[2 * i].size(1);
          float* u = us[i].data_ptr<float>() + (t * B + b0) * kk;
          inner_gemm[i].into(driver, Bc, u);
          round_gemm[i].into(u, Bc, pp);
        } else {
          round_gemm[i].into(driver, Bc, pp);
        }
        float* s = sig[i].data_ptr<float>() + (t * B + b0) * rows;
        const float* gated = (odd_round ? xrow(k, t) : hrow(k, t)) + b0 * rows;
        float* dst = (odd_round ? xrow(k + 1, t) : hrow(k + 1, t)) + b0 * rows;
        const int64_t len = Bc * rows;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          const float sj = sigm(pp[j]);
          s[j] = sj;
          dst[j] = 2.f * sj * gated[j];
        }
      }
      float* xht = XH + t * B * mn;
      const float *xl = xrow(nq, t), *hl = hrow(nr, t);
      for (int64_t b = b0; b < b1; ++b) {
        std::copy(xl + b * m, xl + (b + 1) * m, xht + b * mn);
        std::copy(hl + b * n, hl + (b + 1) * n, xht + b * mn + m);
      }
      gates_gemm.into(xht + b0 * mn, Bc, GP + b0 * 4 * n);
      float* a = A + t * B * 4 * n;
      const float* cp = C + t * B * n;
      float *cn = C + (t + 1) * B * n, *tc = TC + t * B * n, *h = O + t * B * n;
      for (int64_t b = b0; b < b1; ++b) {
        const float* __restrict__ gb = GP + b * 4 * n;
        float* __restrict__ ab = a + b * 4 * n;
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) {
          const int64_t j = b * n + k;
          const float ig = sigm(gb[k] + bp[k]), fg = sigm(gb[n + k] + bp[n + k]),
                      gg = tanh_(gb[2 * n + k] + bp[2 * n + k]), og = sigm(gb[3 * n + k] + bp[3 * n + k]);
          ab[k] = ig; ab[n + k] = fg; ab[2 * n + k] = gg; ab[3 * n + k] = og;
          const float c = fg * cp[j] + ig * gg;
          cn[j] = c;
          const float tj = tanh_(c);
          tc[j] = tj;
          h[j] = og * tj;
        }
      }
    }
  };
  in_row_blocks(B, rows_loop);
  std::vector<at::Tensor> result{xs, hs, xh, acts, cs, tcs, out};
  result.insert(result.end(), sig.begin(), sig.end());
  result.insert(result.end(), us.begin(), us.end());
  return result;
}

// Backward's reverse loop. Returns dx (T, B, m), dh_0, dc_0, dgates (T, B, 4n), then each
// round's pre-activation gradient (T, B, rows), then (factored) each round's v = dpre A
// (T, B, k); the caller forms every weight gradient from these with one product each.
std::vector<at::Tensor> mogrifier_backward(const at::Tensor& grad_out, const at::Tensor& grad_h,
                                           const at::Tensor& grad_c, const at::Tensor& w,
                                           const std::vector<at::Tensor>& mats, const at::Tensor& xs,
                                           const at::Tensor& hs, const at::Tensor& acts, const at::Tensor& cs,
                                           const at::Tensor& tcs, const std::vector<at::Tensor>& sig,
                                           bool factored) {
  const int64_t f = factored ? 2 : 1;
  const int64_t T = acts.size(0), B = acts.size(1), n = acts.size(2) / 4, m = xs.size(3), R = mats.size() / f;
  const auto opt = acts.options();
  const auto go = grad_out.contiguous();
  auto dgates = at::empty({T, B, 4 * n}, opt), dx = at::empty({T, B, m}, opt);
  auto dh = grad_h.contiguous().clone(), dc = grad_c.contiguous().clone();
  auto gx = at::empty({B, m}, opt), gh = at::empty({B, n}, opt);
  std::vector<at::Tensor> dpres, vs;
  std::vector<StepGemm> round_gemm_t, outer_gemm_t;
  for (int64_t i = 0; i < R; ++i) {
    const auto& q = mats[f * i];
    dpres.push_back(at::empty({T, B, q.size(0)}, opt));
    round_gemm_t.emplace_back(q.t(), B);  // dpre (B, rows) -> dpre q (B, cols); factored: v = dpre A (B, k)
    if (factored) {
      vs.push_back(at::empty({T, B, q.size(1)}, opt));
      outer_gemm_t.emplace_back(mats[2 * i + 1].t(), B);  // v (B, k) -> v B (B, cols)
    }
  }
  // dgates (B, 4n) -> dgates w[:, :m] (B, m) and dgates w[:, m:] (B, n), straight into gx, gh
  const auto wt = w.t();
  const StepGemm gates_gemm_tx(wt.narrow(0, 0, m), B), gates_gemm_th(wt.narrow(0, m, n), B);
  const float *A = acts.data_ptr<float>(), *C = cs.data_ptr<float>(), *TC = tcs.data_ptr<float>(),
              *GO = go.data_ptr<float>(), *XS = xs.data_ptr<float>(), *HS = hs.data_ptr<float>();
  float *DG = dgates.data_ptr<float>(), *dhp = dh.data_ptr<float>(), *dcp = dc.data_ptr<float>(),
        *gxp = gx.data_ptr<float>(), *ghp = gh.data_ptr<float>();
  float* DX = dx.data_ptr<float>();
  auto rows_loop = [&](int64_t b0, int64_t b1) {  // rows [b0, b1) through every step, as the forward's
    const int64_t Bc = b1 - b0;
    for (int64_t t = T - 1; t >= 0; --t) {
      const float *a = A + t * B * 4 * n, *cp = C + t * B * n, *tc = TC + t * B * n, *gop = GO + t * B * n;
      float* dg = DG + t * B * 4 * n;
      for (int64_t b = b0; b < b1; ++b) {
        const float* __restrict__ ab = a + b * 4 * n;
        float* __restrict__ dgb = dg + b * 4 * n;
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) {
          const int64_t j = b * n + k;
          const float ig = ab[k], fg = ab[n + k], gg = ab[2 * n + k], og = ab[3 * n + k];
          const float dht = dhp[j] + gop[j], tj = tc[j];
          const float dct = dcp[j] + dht * og * (1.f - tj * tj);
          dgb[k] = dct * gg * ig * (1.f - ig);
          dgb[n + k] = dct * cp[j] * fg * (1.f - fg);
          dgb[2 * n + k] = dct * ig * (1.f - gg * gg);
          dgb[3 * n + k] = dht * tj * og * (1.f - og);
          dcp[j] = dct * fg;
        }
      }
      gates_gemm_tx.into(dg + b0 * 4 * n, Bc, gxp + b0 * m);
      gates_gemm_th.into(dg + b0 * 4 * n, Bc, ghp + b0 * n);
      for (int64_t i = R - 1; i >= 0; --i) {
        const int64_t k = i / 2, rows = mats[f * i].size(0);
        const bool odd_round = i % 2 == 0;
        // Round i+1 made new = 2 s ⊙ gated with s = σ(pre): the new value's gradient g gives
        // dpre = g ⊙ gated ⊙ 2 s (1 - s) and, for the gated value, g ⊙ 2 s.
        float* g = (odd_round ? gxp : ghp) + b0 * rows;
        const float* gated = (odd_round ? XS + (k * T + t) * B * m : HS + (k * T + t) * B * n) + b0 * rows;
        const float* s = sig[i].data_ptr<float>() + (t * B + b0) * rows;
        float* dpre = dpres[i].data_ptr<float>() + (t * B + b0) * rows;
        const int64_t len = Bc * rows;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          const float sj = s[j];
          dpre[j] = g[j] * gated[j] * 2.f * sj * (1.f - sj);
          g[j] *= 2.f * sj;
        }
        float* other = odd_round ? ghp + b0 * n : gxp + b0 * m;  // the driver's gradient gains dpre Q (or v B)
        if (factored) {
          const int64_t kk = mats[2 * i].size(1);
          float* v = vs[i].data_ptr<float>() + (t * B + b0) * kk;
          round_gemm_t[i].into(dpre, Bc, v);
          outer_gemm_t[i].into(v, Bc, other, 1.f);
        } else {
          round_gemm_t[i].into(dpre, Bc, other, 1.f);
        }
      }
      std::copy(gxp + b0 * m, gxp + b1 * m, DX + t * B * m + b0 * m);
      std::copy(ghp + b0 * n, ghp + b1 * n, dhp + b0 * n);
    }
  };
  in_row_blocks(B, rows_loop);
  std::vector<at::Tensor> result{dx, dh, dc, dgates};
  result.insert(result.end(), dpres.begin(), dpres.end());
  result.insert(result.end(), vs.begin(), vs.end());
  return result;
}

// x * keep / (1 - p'), keep drawn as above with `dropped` of the 65536 levels dropped
// (p' = dropped / 65536: the caller rounds p).
at::Tensor dropconnect(const at::Tensor& x, int64_t dropped, int64_t seed) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.device().is_cpu(), "dropconnect: float32 CPU tensor expected");
  TORCH_CHECK(dropped >= 0 && dropped < 65536, "dropconnect: dropped levels must be in [0, 65536)");
  auto xc = x.contiguous();
  auto out = at::empty(xc.sizes(), xc.options());
  masked_scale(xc.data_ptr<float>(), out.data_ptr<float>(), xc.numel(), (uint64_t)seed, (uint32_t)dropped,
               (float)(65536.0 / (65536.0 - (double)dropped)));
  return out;
}

std::vector<int64_t> philox_block(int64_t counter, int64_t key) {
  uint32_t x0 = (uint32_t)(uint64_t)counter, x1 = (uint32_t)((uint64_t)counter >> 32), x2 = 0, x3 = 0;
  const uint32_t k0 = (uint32_t)(uint64_t)key, k1 = (uint32_t)((uint64_t)key >> 32);
  AWD_PHILOX_BLOCK(x0, x1, x2, x3, k0, k1)
  return {x0, x1, x2, x3};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("philox_block", &philox_block, "one Philox-4x32-10 block (for known-answer tests)");
  m.def("dropconnect", &dropconnect, "x * Philox keep mask / (1 - p)");
  m.def("step_forward", &step_forward, "per-step LSTM forward");
  m.def("step_backward", &step_backward, "per-step LSTM backward");
  m.def("mogrifier_forward", &mogrifier_forward, "Mogrifier LSTM forward");
  m.def("mogrifier_backward", &mogrifier_backward, "Mogrifier LSTM backward's reverse loop");
}
