#ifndef CLIP_KERNELS_H
#define CLIP_KERNELS_H

// A single-precision matrix product for the CLIP engine's linear layers, C += A · Wᵀ, with W
// packed once at load into 16-column panels, so that no call repacks the weights. Needs AVX2 and
// FMA (checked at run time with `clipk_supported`); callers fall back to BLAS without them.

#include <stddef.h>

/// 1 when this CPU runs the packed kernel (AVX2 and FMA), else 0.
int clipk_supported(void);

/// Floats needed to pack an `n × k` weight matrix (`n` rounded up to a multiple of 16).
size_t clipk_packed_count(int n, int k);

/// Packs a row-major `n × k` matrix W: panel `p` holds rows `16p … 16p + 15` transposed, element
/// (kk, j) at `p * k * 16 + kk * 16 + j`, rows past `n` zero.
void clipk_pack(const float *w, int n, int k, float *packed);

/// `C[i][j] += Σ_kk A[i][kk] · W[j][kk]` for rows `0 … m-1` and columns `column_start …
/// column_end - 1` (`column_start` a multiple of 16). A is row-major `m × k`, C row-major with
/// leading dimension `ldc`. The sum over `kk` runs in the same order for every split of the
/// columns, so results do not depend on how callers divide the work.
void clipk_gemm(const float *a, int m, int k, const float *packed, int column_start, int column_end, float *c, int ldc);

/// `x · sigmoid(1.702 x)` of every value, in place.
void clipk_quick_gelu(float *x, size_t count);

/// Softmax of `count` values, in place.
void clipk_softmax(float *x, size_t count);

/// Layer normalisation of `rows` rows of `width` values: `(x - mean) / sqrt(variance + ε) · scale
/// + shift`. `out` may be `in`.
void clipk_layer_norm(const float *in, int rows, int width, const float *scale, const float *shift, float epsilon, float *out);

#endif
