#include "diagnostics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace bptt {
namespace engine {

namespace {

// h = P h P with P = I - 2 v v^T / (v^T v) zeroing column k of h below row k + 1.
void Hessenberg(std::vector<double>& h, size_t n) {
  std::vector<double> v(n), s(n);
  for (size_t k = 0; k + 2 < n; ++k) {
    double alpha = 0;
    for (size_t i = k + 1; i < n; ++i) alpha += h[i * n + k] * h[i * n + k];
    alpha = std::sqrt(alpha);
    if (alpha == 0) continue;
    const double x0 = h[(k + 1) * n + k];
    if (x0 > 0) alpha = -alpha;
    std::fill(v.begin(), v.end(), 0.0);
    v[k + 1] = x0 - alpha;
    for (size_t i = k + 2; i < n; ++i) v[i] = h[i * n + k];
    double vv = 0;
    for (size_t i = k + 1; i < n; ++i) vv += v[i] * v[i];
    if (vv == 0) continue;
    // Rows first (s = v^T h, row by row for the cache), then columns.
    std::fill(s.begin(), s.end(), 0.0);
    for (size_t i = k + 1; i < n; ++i) {
      const double* row = &h[i * n];
      for (size_t j = 0; j < n; ++j) s[j] += v[i] * row[j];
    }
    for (size_t i = k + 1; i < n; ++i) {
      double* row = &h[i * n];
      const double c = 2 * v[i] / vv;
      for (size_t j = 0; j < n; ++j) row[j] -= c * s[j];
    }
    for (size_t i = 0; i < n; ++i) {
      double* row = &h[i * n];
      double s = 0;
      for (size_t j = k + 1; j < n; ++j) s += row[j] * v[j];
      s = 2 * s / vv;
      for (size_t j = k + 1; j < n; ++j) row[j] -= s * v[j];
    }
    for (size_t i = k + 2; i < n; ++i) h[i * n + k] = 0;
  }
}

void Eigen2(double a, double b, double c, double d, double* out) {
  const double mean = (a + d) / 2, disc = ((a - d) / 2) * ((a - d) / 2) + b * c;
  if (disc >= 0) {
    const double r = std::sqrt(disc);
    out[0] = mean + r, out[1] = 0, out[2] = mean - r, out[3] = 0;
  } else {
    const double r = std::sqrt(-disc);
    out[0] = mean, out[1] = r, out[2] = mean, out[3] = -r;
  }
}

}  // namespace

bool eigenvalues(const double* a, size_t n, double* out) {
  std::vector<double> h(a, a + n * n);
  Hessenberg(h, n);
  auto at = [&](size_t i, size_t j) -> double& { return h[i * n + j]; };
  double norm = 0;
  for (double x : h) norm = std::max(norm, std::fabs(x));
  size_t found = 0, iterations = 0;
  const double eps = std::numeric_limits<double>::epsilon();
  for (long hi = static_cast<long>(n) - 1; hi >= 0;) {
    const size_t H = static_cast<size_t>(hi);
    size_t l = H;
    while (l > 0) {
      double s = std::fabs(at(l - 1, l - 1)) + std::fabs(at(l, l));
      if (s == 0) s = norm;
      if (std::fabs(at(l, l - 1)) <= eps * s) {
        at(l, l - 1) = 0;
        break;
      }
      --l;
    }
    if (l == H) {
      out[2 * found] = at(H, H), out[2 * found + 1] = 0;
      found += 1, hi -= 1, iterations = 0;
      continue;
    }
    if (l + 1 == H) {
      Eigen2(at(H - 1, H - 1), at(H - 1, H), at(H, H - 1), at(H, H), out + 2 * found);
      found += 2, hi -= 2, iterations = 0;
      continue;
    }
    if (++iterations > 60 * n) return false;
    double s, t;
    if (iterations % 11 == 10) {
      const double w = std::fabs(at(H, H - 1)) + std::fabs(at(H - 1, H - 2));
      s = 1.5 * w, t = w * w;
    } else {
      s = at(H - 1, H - 1) + at(H, H);
      t = at(H - 1, H - 1) * at(H, H) - at(H - 1, H) * at(H, H - 1);
    }
    double x = at(l, l) * at(l, l) + at(l, l + 1) * at(l + 1, l) - s * at(l, l) + t;
    double y = at(l + 1, l) * (at(l, l) + at(l + 1, l + 1) - s);
    double z = at(l + 1, l) * at(l + 2, l + 1);
    for (size_t k = l; k + 2 <= H; ++k) {
      const double alpha = std::sqrt(x * x + y * y + z * z);
      if (alpha != 0) {
        const double v0 = x + (x >= 0 ? alpha : -alpha), v1 = y, v2 = z;
        const double vv = v0 * v0 + v1 * v1 + v2 * v2;
        for (size_t j = std::max(l, k > 0 ? k - 1 : 0); j <= H; ++j) {
          const double p = 2 * (v0 * at(k, j) + v1 * at(k + 1, j) + v2 * at(k + 2, j)) / vv;
          at(k, j) -= p * v0, at(k + 1, j) -= p * v1, at(k + 2, j) -= p * v2;
        }
        for (size_t i = l; i <= std::min(H, k + 3); ++i) {
          const double p = 2 * (at(i, k) * v0 + at(i, k + 1) * v1 + at(i, k + 2) * v2) / vv;
          at(i, k) -= p * v0, at(i, k + 1) -= p * v1, at(i, k + 2) -= p * v2;
        }
      }
      x = at(k + 1, k);
      y = at(k + 2, k);
      z = k + 2 < H ? at(k + 3, k) : 0;
    }
    const double alpha = std::sqrt(x * x + y * y);
    if (alpha != 0) {
      const size_t k = H - 1;
      const double v0 = x + (x >= 0 ? alpha : -alpha), v1 = y, vv = v0 * v0 + v1 * v1;
      for (size_t j = std::max(l, k - 1); j <= H; ++j) {
        const double p = 2 * (v0 * at(k, j) + v1 * at(k + 1, j)) / vv;
        at(k, j) -= p * v0, at(k + 1, j) -= p * v1;
      }
      for (size_t i = l; i <= H; ++i) {
        const double p = 2 * (at(i, k) * v0 + at(i, k + 1) * v1) / vv;
        at(i, k) -= p * v0, at(i, k + 1) -= p * v1;
      }
    }
    for (size_t i = l + 2; i <= H; ++i)
      for (size_t j = l; j + 1 < i; ++j) at(i, j) = 0;
  }
  return true;
}

double largest_singular_value(const double* a, size_t rows, size_t cols, double tolerance, size_t max_iterations) {
  std::vector<double> v(cols), w(rows), next(cols);
  for (size_t i = 0; i < cols; ++i) v[i] = 1 + std::fmod(static_cast<double>(i) * 0.618033988749895, 1.0);
  double sigma = 0;
  for (size_t it = 0; it < max_iterations; ++it) {
    double nv = 0;
    for (double x : v) nv += x * x;
    nv = std::sqrt(nv);
    if (nv == 0) return 0;
    for (double& x : v) x /= nv;
    double nw = 0;
    for (size_t i = 0; i < rows; ++i) {
      double acc = 0;
      for (size_t j = 0; j < cols; ++j) acc += a[i * cols + j] * v[j];
      w[i] = acc;
      nw += acc * acc;
    }
    std::fill(next.begin(), next.end(), 0.0);
    for (size_t i = 0; i < rows; ++i) {
      if (w[i] == 0) continue;
      for (size_t j = 0; j < cols; ++j) next[j] += a[i * cols + j] * w[i];
    }
    const double estimate = std::sqrt(nw);
    v.swap(next);
    if (std::fabs(estimate - sigma) <= tolerance * estimate) return estimate;
    sigma = estimate;
  }
  return sigma;
}

}  // namespace engine
}  // namespace bptt
