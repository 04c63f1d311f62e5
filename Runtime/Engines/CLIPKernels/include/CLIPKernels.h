#ifndef CLIP_KERNELS_H
#define CLIP_KERNELS_H

// A single-precision matrix product for the CLIP engine's linear layers, C += A · Wᵀ, with W
// packed once at load into 16-column panels, so that no call repacks the weights. Needs AVX2 and
// FMA (checked at run time with `clipk_supported`) and uses AVX-512 where the CPU has it; callers
// fall back to BLAS without AVX2.

#include <stddef.h>

/// 1 when this CPU runs the packed kernel (AVX2 and FMA), else 0.
int clipk_supported(void);

/// The product kernel this CPU runs: 2 for AVX-512 (16-column registers, two panels at a time), 1
/// for AVX2 and FMA, 0 for none (callers use BLAS). Both kernels give identical results.
int clipk_level(void);

/// Chooses a lower kernel level than the best this CPU runs (1 forces the AVX2 kernel on an AVX-512
/// CPU, for tests and benchmarks); 0 or a level the CPU lacks restores the best. Returns the level
/// now in force.
int clipk_set_level(int level);

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

/// Copies A (`m × k`, row-major) into the layout the AVX-512 kernel reads, in the calling thread's
/// scratch memory, valid until this thread's next call of this function or of ``clipk_gemm``.
/// Returns NULL where the AVX-512 kernel is not in use (the AVX2 kernel reads A itself). Done once
/// per product, before its columns are split between threads.
const float *clipk_prepare_rows(const float *a, int m, int k);

/// The same preparation split for several threads: ``clipk_row_blocks`` blocks (0 where the
/// AVX-512 kernel is not in use), each filled by ``clipk_prepare_row_block`` into the buffer that
/// ``clipk_prepared_rows_buffer`` gives the calling thread (NULL when memory is short), which is
/// then what ``clipk_gemm_prepared`` reads.
int clipk_row_blocks(int m);
float *clipk_prepared_rows_buffer(int m, int k);
void clipk_prepare_row_block(const float *a, int m, int k, int block, float *prepared);

/// ``clipk_gemm`` over rows that ``clipk_prepare_rows`` prepared (or NULL): any thread may run any
/// column range of the same product with the same prepared rows.
void clipk_gemm_prepared(
    const float *a, const float *prepared, int m, int k, const float *packed, int column_start, int column_end,
    float *c, int ldc);

/// `x · sigmoid(1.702 x)` of every value, in place.
void clipk_quick_gelu(float *x, size_t count);

/// Softmax of `count` values, in place.
void clipk_softmax(float *x, size_t count);

/// Layer normalisation of `rows` rows of `width` values: `(x - mean) / sqrt(variance + ε) · scale
/// + shift`. `out` may be `in`.
void clipk_layer_norm(const float *in, int rows, int width, const float *scale, const float *shift, float epsilon, float *out);

/// Floats of scratch memory ``clipk_attention`` needs for a sequence of `length` tokens and heads
/// of `head_size` values.
size_t clipk_attention_scratch_count(int length, int head_size);
/// One attention head over one sequence: for each query row `i`, `out[i] = Σ_j p_ij · v[j]` with
/// `p_i = softmax(scale · q[i] · k[j] for visible j)`, where a causal head sees `j ≤ i` and any
/// other every `j`. `q`, `k` and `v` are `length × head_size` with leading dimension `ld`, `out`
/// with `ldo`; `scratch` holds ``clipk_attention_scratch_count`` floats. The AVX-512 and AVX2
/// versions give the same bits, and a head's result does not depend on the thread that runs it.
void clipk_attention(
    const float *q, const float *k, const float *v, int ld, int length, int head_size, float scale, int causal,
    float *scratch, float *out, int ldo);
/// A part of a parallel step: `worker` is the part's index.
typedef void (*clipk_task)(void *context, int worker);

/// A fixed set of threads for the short parallel steps of one inference. Idle helpers spin for a
/// short while before they sleep, so consecutive steps hand over in about a microsecond instead of
/// a thread wake-up.
typedef struct clipk_pool clipk_pool;

/// A pool of `workers` workers: the calling thread and `workers - 1` helper threads.
clipk_pool *clipk_pool_create(int workers);

/// The workers a pool runs (fewer than asked only when threads could not be started).
int clipk_pool_workers(const clipk_pool *pool);

/// Stops and joins the helpers and frees the pool.
void clipk_pool_destroy(clipk_pool *pool);

/// Runs `task(context, i)` for `i` in `0 … count-1` and returns when all have finished. The calling
/// thread and the helpers take parts one at a time until none is left, so a slower core (another
/// process, the host) delays a step by at most one part. Callers make each part's work depend on
/// its index alone, so results do not depend on who ran it. A caller that finds the pool running
/// another step runs every part itself, so concurrent callers are safe and get the same results.
void clipk_pool_run(clipk_pool *pool, int count, clipk_task task, void *context);

#endif
