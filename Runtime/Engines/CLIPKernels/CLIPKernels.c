#include "CLIPKernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CLIPK_PORTABLE)
#define CLIPK_X86 1
#include <immintrin.h>
#else
#define CLIPK_X86 0
#endif

enum { ROWS = 6, COLUMNS = 16 };

int clipk_supported(void) {
#if CLIPK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

size_t clipk_packed_count(int n, int k) {
    return (size_t)((n + COLUMNS - 1) / COLUMNS) * (size_t)k * COLUMNS;
}

void clipk_pack(const float *w, int n, int k, float *packed) {
    int panels = (n + COLUMNS - 1) / COLUMNS;
    for (int p = 0; p < panels; p++) {
        float *panel = packed + (size_t)p * k * COLUMNS;
        for (int kk = 0; kk < k; kk++) {
            for (int j = 0; j < COLUMNS; j++) {
                int row = p * COLUMNS + j;
                panel[(size_t)kk * COLUMNS + j] = row < n ? w[(size_t)row * k + kk] : 0.0f;
            }
        }
    }
}

#if CLIPK_X86
// C[0..R-1][0..columns-1] += the product of R rows of A (leading dimension lda) and one panel,
// over `depth` steps of k. R is a constant in each caller below, so unused rows cost nothing.
__attribute__((target("avx2,fma"), always_inline))
static inline void block(
    const int R, const float *a, int lda, const float *b, int depth, float *c, int ldc, int columns) {
    __m256 acc[ROWS][2];
    for (int i = 0; i < R; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int p = 0; p < depth; p++) {
        __m256 b0 = _mm256_loadu_ps(b + p * COLUMNS);
        __m256 b1 = _mm256_loadu_ps(b + p * COLUMNS + 8);
        for (int i = 0; i < R; i++) {
            __m256 x = _mm256_broadcast_ss(a + (size_t)i * lda + p);
            acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
        }
    }
    if (columns == COLUMNS) {
        for (int i = 0; i < R; i++) {
            float *line = c + (size_t)i * ldc;
            _mm256_storeu_ps(line, _mm256_add_ps(_mm256_loadu_ps(line), acc[i][0]));
            _mm256_storeu_ps(line + 8, _mm256_add_ps(_mm256_loadu_ps(line + 8), acc[i][1]));
        }
    } else {
        float sums[COLUMNS];
        for (int i = 0; i < R; i++) {
            _mm256_storeu_ps(sums, acc[i][0]);
            _mm256_storeu_ps(sums + 8, acc[i][1]);
            for (int j = 0; j < columns; j++) c[(size_t)i * ldc + j] += sums[j];
        }
    }
}

#define BLOCK(R)                                                                                        \
    __attribute__((target("avx2,fma"))) static void block##R(                                         \
        const float *a, int lda, const float *b, int depth, float *c, int ldc, int columns) {         \
        block(R, a, lda, b, depth, c, ldc, columns);                                                    \
    }
BLOCK(1)
BLOCK(2)
BLOCK(3)
BLOCK(4)
BLOCK(5)
BLOCK(6)

typedef void (*block_function)(const float *, int, const float *, int, float *, int, int);
static const block_function blocks[ROWS + 1] = {0, block1, block2, block3, block4, block5, block6};

static void gemm_avx2(const float *a, int m, int k, const float *packed, int column_start, int column_end, float *c, int ldc) {
    // Panel by panel, then 6-row block by block, each over all of k: C is read and written once,
    // and the panel is reused from cache by every row block.
    int first = column_start / COLUMNS;
    int last = (column_end + COLUMNS - 1) / COLUMNS;
    for (int p = first; p < last; p++) {
        const float *panel = packed + (size_t)p * k * COLUMNS;
        int columns = column_end - p * COLUMNS < COLUMNS ? column_end - p * COLUMNS : COLUMNS;
        for (int i = 0; i < m; i += ROWS) {
            int rows = m - i < ROWS ? m - i : ROWS;
            blocks[rows](a + (size_t)i * k, k, panel, k, c + (size_t)i * ldc + p * COLUMNS, ldc, columns);
        }
    }
}

// The AVX-512 kernel: up to WIDE_ROWS rows against PANELS panels side by side, one 16-float
// register per row and panel. Each output element still sums over kk in order with one fused
// multiply-add per step, exactly as the AVX2 kernel does, so both give identical results. The
// rows of A are first copied step-major (the R values of one step side by side), so that the loop
// reads them at fixed offsets from one pointer and spends its instructions on the products.
// Ten rows by two panels keep 20 sums in registers (more rows spill on this register file); the
// weights are prefetched 24 steps (1.5 KB per panel) ahead of their use.
enum { WIDE_ROWS = 10, PANELS = 2, PREFETCH_STEPS = 24 };

__attribute__((target("avx512f"), always_inline))
static inline void wide_block(
    const int R, const int P, const float *packed_rows, const float *b, size_t panel_stride, int depth, float *c,
    int ldc, int columns) {
    __m512 acc[WIDE_ROWS][PANELS];
    for (int i = 0; i < R; i++)
        for (int q = 0; q < P; q++) acc[i][q] = _mm512_setzero_ps();
    const float *second = b + panel_stride;
    for (int p = 0; p < depth; p++) {
        __m512 w[PANELS];
        _mm_prefetch((const char *)(b + (size_t)(p + PREFETCH_STEPS) * COLUMNS), _MM_HINT_T0);
        w[0] = _mm512_loadu_ps(b + (size_t)p * COLUMNS);
        if (P > 1) {
            _mm_prefetch((const char *)(second + (size_t)(p + PREFETCH_STEPS) * COLUMNS), _MM_HINT_T0);
            w[1] = _mm512_loadu_ps(second + (size_t)p * COLUMNS);
        }
        const float *step = packed_rows + (size_t)p * R;
        for (int i = 0; i < R; i++) {
            __m512 x = _mm512_set1_ps(step[i]);
            for (int q = 0; q < P; q++) acc[i][q] = _mm512_fmadd_ps(x, w[q], acc[i][q]);
        }
    }
    for (int q = 0; q < P; q++) {
        int remaining = columns - q * COLUMNS;
        __mmask16 mask = remaining >= COLUMNS ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
        for (int i = 0; i < R; i++) {
            float *line = c + (size_t)i * ldc + q * COLUMNS;
            _mm512_mask_storeu_ps(line, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, line), acc[i][q]));
        }
    }
}

#define WIDE_BLOCK(R, P)                                                                                      \
    __attribute__((target("avx512f"))) static void wide_block##R##_##P(                                      \
        const float *rows, const float *b, size_t panel_stride, int depth, float *c, int ldc, int columns) { \
        wide_block(R, P, rows, b, panel_stride, depth, c, ldc, columns);                                      \
    }
#define WIDE_BLOCKS(R) WIDE_BLOCK(R, 1) WIDE_BLOCK(R, 2)
WIDE_BLOCKS(1)
WIDE_BLOCKS(2)
WIDE_BLOCKS(3)
WIDE_BLOCKS(4)
WIDE_BLOCKS(5)
WIDE_BLOCKS(6)
WIDE_BLOCKS(7)
WIDE_BLOCKS(8)
WIDE_BLOCKS(9)
WIDE_BLOCKS(10)

typedef void (*wide_function)(const float *, const float *, size_t, int, float *, int, int);
static const wide_function wide_blocks[WIDE_ROWS + 1][PANELS + 1] = {
    {0, 0, 0},
    {0, wide_block1_1, wide_block1_2},
    {0, wide_block2_1, wide_block2_2},
    {0, wide_block3_1, wide_block3_2},
    {0, wide_block4_1, wide_block4_2},
    {0, wide_block5_1, wide_block5_2},
    {0, wide_block6_1, wide_block6_2},
    {0, wide_block7_1, wide_block7_2},
    {0, wide_block8_1, wide_block8_2},
    {0, wide_block9_1, wide_block9_2},
    {0, wide_block10_1, wide_block10_2},
};

// Each thread keeps one scratch buffer for the step-major rows, grown when needed and freed when
// the thread ends.
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

struct scratch {
    float *values;
    size_t capacity;
};

static void free_scratch(void *pointer) {
    struct scratch *scratch = pointer;
    free(scratch->values);
    free(scratch);
}

static void make_scratch_key(void) { pthread_key_create(&scratch_key, free_scratch); }

static float *scratch_floats(size_t count) {
    pthread_once(&scratch_once, make_scratch_key);
    struct scratch *scratch = pthread_getspecific(scratch_key);
    if (!scratch) {
        scratch = calloc(1, sizeof *scratch);
        if (!scratch) return NULL;
        pthread_setspecific(scratch_key, scratch);
    }
    if (scratch->capacity < count) {
        size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
        float *values = aligned_alloc(64, bytes);
        if (!values) return NULL;
        free(scratch->values);
        scratch->values = values;
        scratch->capacity = count;
    }
    return scratch->values;
}

// Rows in blocks of as equal a size as fits (50 rows: 5 × 10, not 6 × 8 + 2), so that no small
// block runs with too few independent sums to keep both FMA units busy: the first `m % blocks`
// blocks hold one row more than the others.
static int row_blocks(int m) { return (m + WIDE_ROWS - 1) / WIDE_ROWS; }

static void row_block(int m, int block, int *first, int *height) {
    int blocks = row_blocks(m), base = m / blocks, extra = m % blocks;
    *first = block * base + (block < extra ? block : extra);
    *height = base + (block < extra ? 1 : 0);
}

// Row block `block` of A, step-major, at its place in `rows`: written in order, with the loads
// striding across the rows (stores to scattered lines were slower: 4.1 % of an 8-image batch's
// samples in `perf` against 2.6 %).
static void prepare_row_block(const float *a, int m, int k, int block, float *rows) {
    int first, height;
    row_block(m, block, &first, &height);
    float *target = rows + (size_t)first * k;
    const float *source = a + (size_t)first * k;
    for (int p = 0; p < k; p++, target += height)
        for (int r = 0; r < height; r++) target[r] = source[(size_t)r * k + p];
}

static void prepare_rows_avx512(const float *a, int m, int k, float *rows) {
    for (int block = 0; block < row_blocks(m); block++) prepare_row_block(a, m, k, block, rows);
}

static void gemm_avx512(const float *rows, int m, int k, const float *packed, int column_start, int column_end, float *c, int ldc) {
    // Two panels at a time, then row block by row block over all of k: each panel pair is read
    // from memory once and from cache by the other blocks.
    int first = column_start / COLUMNS;
    int last = (column_end + COLUMNS - 1) / COLUMNS;
    size_t panel_stride = (size_t)k * COLUMNS;
    for (int p = first; p < last; p += PANELS) {
        int panels = last - p < PANELS ? last - p : PANELS;
        const float *panel = packed + (size_t)p * panel_stride;
        int columns = column_end - p * COLUMNS;
        if (columns > panels * COLUMNS) columns = panels * COLUMNS;
        for (int block = 0; block < row_blocks(m); block++) {
            int i, height;
            row_block(m, block, &i, &height);
            wide_blocks[height][panels](
                rows + (size_t)i * k, panel, panel_stride, k, c + (size_t)i * ldc + p * COLUMNS, ldc, columns);
        }
    }
}

static int best_level(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 2 : (clipk_supported() ? 1 : 0);
}

static int kernel_level = -1;

int clipk_level(void) {
    int level = __atomic_load_n(&kernel_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = best_level();
        __atomic_store_n(&kernel_level, level, __ATOMIC_RELAXED);
    }
    return level;
}

int clipk_set_level(int level) {
    int best = best_level();
    int chosen = level < 1 || level > best ? best : level;
    __atomic_store_n(&kernel_level, chosen, __ATOMIC_RELAXED);
    return chosen;
}

const float *clipk_prepare_rows(const float *a, int m, int k) {
    if (clipk_level() < 2) return NULL;
    float *rows = scratch_floats((size_t)m * k);
    if (rows) prepare_rows_avx512(a, m, k, rows);
    return rows;
}

int clipk_row_blocks(int m) { return clipk_level() >= 2 && m > 0 ? row_blocks(m) : 0; }

float *clipk_prepared_rows_buffer(int m, int k) {
    return clipk_level() >= 2 ? scratch_floats((size_t)m * k) : NULL;
}

void clipk_prepare_row_block(const float *a, int m, int k, int block, float *prepared) {
    prepare_row_block(a, m, k, block, prepared);
}

void clipk_gemm_prepared(
    const float *a, const float *prepared, int m, int k, const float *packed, int column_start, int column_end,
    float *c, int ldc) {
    // Rows are prepared only where the AVX-512 kernel is in use; without them (no AVX-512, or no
    // scratch memory) the AVX2 kernel gives the same result.
    if (prepared) gemm_avx512(prepared, m, k, packed, column_start, column_end, c, ldc);
    else gemm_avx2(a, m, k, packed, column_start, column_end, c, ldc);
}

void clipk_gemm(const float *a, int m, int k, const float *packed, int column_start, int column_end, float *c, int ldc) {
    clipk_gemm_prepared(a, clipk_prepare_rows(a, m, k), m, k, packed, column_start, column_end, c, ldc);
}
#else
int clipk_level(void) { return 0; }

int clipk_set_level(int level) {
    (void)level;
    return 0;
}

const float *clipk_prepare_rows(const float *a, int m, int k) {
    (void)a, (void)m, (void)k;
    return NULL;
}

int clipk_row_blocks(int m) {
    (void)m;
    return 0;
}

float *clipk_prepared_rows_buffer(int m, int k) {
    (void)m, (void)k;
    return NULL;
}

void clipk_prepare_row_block(const float *a, int m, int k, int block, float *prepared) {
    (void)a, (void)m, (void)k, (void)block, (void)prepared;
}

void clipk_gemm_prepared(
    const float *a, const float *prepared, int m, int k, const float *packed, int column_start, int column_end,
    float *c, int ldc) {
    (void)prepared;
    clipk_gemm(a, m, k, packed, column_start, column_end, c, ldc);
}

void clipk_gemm(const float *a, int m, int k, const float *packed, int column_start, int column_end, float *c, int ldc) {
    // Only reached where clipk_supported() is 1; kept portable for completeness.
    for (int i = 0; i < m; i++) {
        for (int j = column_start; j < column_end; j++) {
            const float *panel = packed + (size_t)(j / COLUMNS) * k * COLUMNS + j % COLUMNS;
            float sum = 0;
            for (int kk = 0; kk < k; kk++) sum += a[(size_t)i * k + kk] * panel[(size_t)kk * COLUMNS];
            c[(size_t)i * ldc + j] += sum;
        }
    }
}
#endif

// exp(x) = 2^n · p(r), x = n ln 2 + r, |r| <= ln 2 / 2, p a degree-7 Taylor polynomial (relative
// error below 2e-7); n is rounded with the 1.5 · 2^23 trick. Scalar and AVX2 versions agree.
static inline float exp_scalar(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float magic = 12582912.0f;
    float shifted = x * 1.44269504f + magic;
    float n = shifted - magic;
    float r = x - n * 0.69314575f - n * 1.4286068e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { float f; int i; } s = {shifted}, m = {magic}, scale;
    scale.i = ((s.i - m.i) + 127) << 23;
    return p * scale.f;
}

#if CLIPK_X86
__attribute__((target("avx2,fma")))
static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.69314575f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.4286068e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(exponent, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(p, scale);
}

#endif

static int avx2(void) {
    static int supported = -1;
    if (supported < 0) supported = clipk_supported();
    return supported;
}

#if CLIPK_X86
__attribute__((target("avx2,fma")))
static size_t quick_gelu_avx2(float *x, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp_avx2(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f)));
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
    }
    return i;
}

#else
static size_t quick_gelu_avx2(float *x, size_t count) {
    (void)x, (void)count;
    return 0;
}
#endif

void clipk_quick_gelu(float *x, size_t count) {
    size_t i = avx2() ? quick_gelu_avx2(x, count) : 0;
    for (; i < count; i++) x[i] = x[i] / (1.0f + exp_scalar(-1.702f * x[i]));
}

#if CLIPK_X86
__attribute__((target("avx2,fma")))
static size_t exp_shifted_avx2(float *x, size_t count, float shift, float *sum) {
    size_t i = 0;
    __m256 total = _mm256_setzero_ps();
    for (; i + 8 <= count; i += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(shift)));
        _mm256_storeu_ps(x + i, e);
        total = _mm256_add_ps(total, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, total);
    *sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    return i;
}

#else
static size_t exp_shifted_avx2(float *x, size_t count, float shift, float *sum) {
    (void)x, (void)count, (void)shift;
    *sum = 0;
    return 0;
}
#endif

void clipk_softmax(float *x, size_t count) {
    if (count == 0) return;
    float maximum = x[0];
    for (size_t i = 1; i < count; i++) maximum = x[i] > maximum ? x[i] : maximum;
    float sum = 0;
    size_t i = avx2() ? exp_shifted_avx2(x, count, maximum, &sum) : 0;
    for (; i < count; i++) {
        x[i] = exp_scalar(x[i] - maximum);
        sum += x[i];
    }
    float inverse = 1.0f / sum;
    for (size_t j = 0; j < count; j++) x[j] *= inverse;
}

// Attention for one head. The keys are first transposed so that both products run along
// contiguous rows with one multiply-add per term: the scores of a query row accumulate over the
// head's values, `s[j] += q[d] · kᵀ[d][j]`, and its output over the visible tokens,
// `o[c] += p[j] · v[j][c]`, each in a fixed order, so that every version below gives the same
// bits: the AVX-512 one written out, the AVX2 one compiled from the plain one (which serves CPUs
// without either).
size_t clipk_attention_scratch_count(int length, int head_size) {
    return (size_t)length * (size_t)head_size + 2 * (size_t)length;
}

// Written in order, reading down the columns of k, for the reason prepare_row_block gives.
static inline void transpose_keys(const float *k, int ld, int length, int head_size, float *keys) {
    for (int d = 0; d < head_size; d++)
        for (int j = 0; j < length; j++) keys[(size_t)d * length + j] = k[(size_t)j * ld + d];
}

__attribute__((always_inline))
static inline void attention_head(
    const float *q, const float *k, const float *v, int ld, int length, int head_size, float scale, int causal,
    float *scratch, float *out, int ldo) {
    float *keys = scratch;
    float *scores = scratch + (size_t)length * head_size;
    transpose_keys(k, ld, length, head_size, keys);
    for (int i = 0; i < length; i++) {
        int visible = causal ? i + 1 : length;
        const float *query = q + (size_t)i * ld;
        for (int j = 0; j < visible; j++) scores[j] = 0;
        for (int d = 0; d < head_size; d++) {
            float x = query[d];
            const float *line = keys + (size_t)d * length;
            for (int j = 0; j < visible; j++) scores[j] = __builtin_fmaf(x, line[j], scores[j]);
        }
        for (int j = 0; j < visible; j++) scores[j] *= scale;
        clipk_softmax(scores, (size_t)visible);
        float *o = out + (size_t)i * ldo;
        for (int c = 0; c < head_size; c++) o[c] = 0;
        for (int j = 0; j < visible; j++) {
            float p = scores[j];
            const float *value = v + (size_t)j * ld;
            for (int c = 0; c < head_size; c++) o[c] = __builtin_fmaf(p, value[c], o[c]);
        }
    }
}

#if CLIPK_X86
// The AVX-512 version takes two query rows at a time, with each row's sums for up to 64 tokens
// (scores) or 64 columns (outputs) held in four registers: eight independent sums per step keep
// both multiply-add units busy, and the key and value loads serve both rows. A causal pair's first
// row sees one token fewer; the score it computes for that token is never read.
enum { ATTENTION_LANES = 64 };

static inline __mmask16 lane_mask(int remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : remaining <= 0 ? 0 : (__mmask16)((1u << remaining) - 1);
}

// a[t] += Σ_s x[s] · rows[s · stride + 16t .. +15] over `steps` steps, and b[t] likewise with
// y: the sums of two query rows, sharing each load. Lanes outside `mask[t]` load zeros.
__attribute__((target("avx512f"), always_inline))
static inline void accumulate_pair(
    const float *x, const float *y, int steps, const float *rows, size_t stride, const __mmask16 *mask, __m512 *a,
    __m512 *b) {
    for (int s = 0; s < steps; s++, rows += stride) {
        __m512 first = _mm512_set1_ps(x[s]);
        __m512 second = _mm512_set1_ps(y[s]);
        for (int t = 0; t < 4; t++) {
            __m512 row = _mm512_maskz_loadu_ps(mask[t], rows + 16 * t);
            a[t] = _mm512_fmadd_ps(first, row, a[t]);
            b[t] = _mm512_fmadd_ps(second, row, b[t]);
        }
    }
}

// The same for one row alone.
__attribute__((target("avx512f"), always_inline))
static inline void accumulate_one(
    const float *x, int steps, const float *rows, size_t stride, const __mmask16 *mask, __m512 *a) {
    for (int s = 0; s < steps; s++, rows += stride) {
        __m512 first = _mm512_set1_ps(x[s]);
        for (int t = 0; t < 4; t++) a[t] = _mm512_fmadd_ps(first, _mm512_maskz_loadu_ps(mask[t], rows + 16 * t), a[t]);
    }
}

// The scaled scores of query rows `first` and `second` (null for a row without a partner)
// against the first `visible` keys.
__attribute__((target("avx512f")))
static void attention_scores_avx512(
    const float *first, const float *second, const float *keys, int length, int head_size, int visible,
    float scale, float *scores_first, float *scores_second) {
    __m512 factor = _mm512_set1_ps(scale);
    for (int j0 = 0; j0 < visible; j0 += ATTENTION_LANES) {
        __mmask16 mask[4];
        __m512 a[4], b[4];
        for (int t = 0; t < 4; t++) {
            mask[t] = lane_mask(visible - j0 - 16 * t);
            a[t] = b[t] = _mm512_setzero_ps();
        }
        if (second) accumulate_pair(first, second, head_size, keys + j0, (size_t)length, mask, a, b);
        else accumulate_one(first, head_size, keys + j0, (size_t)length, mask, a);
        for (int t = 0; t < 4; t++) {
            _mm512_mask_storeu_ps(scores_first + j0 + 16 * t, mask[t], _mm512_mul_ps(a[t], factor));
            if (second) _mm512_mask_storeu_ps(scores_second + j0 + 16 * t, mask[t], _mm512_mul_ps(b[t], factor));
        }
    }
}

// out_first = Σ_{j < visible_first} p_first[j] · v[j] and out_second likewise over
// visible_second ≥ visible_first tokens (`p_second` null for a row without a partner).
__attribute__((target("avx512f")))
static void attention_outputs_avx512(
    const float *p_first, const float *p_second, const float *v, int ld, int head_size, int visible_first,
    int visible_second, float *out_first, float *out_second) {
    for (int c0 = 0; c0 < head_size; c0 += ATTENTION_LANES) {
        __mmask16 mask[4];
        __m512 a[4], b[4];
        for (int t = 0; t < 4; t++) {
            mask[t] = lane_mask(head_size - c0 - 16 * t);
            a[t] = b[t] = _mm512_setzero_ps();
        }
        if (p_second) {
            accumulate_pair(p_first, p_second, visible_first, v + c0, (size_t)ld, mask, a, b);
            accumulate_one(
                p_second + visible_first, visible_second - visible_first, v + (size_t)visible_first * ld + c0,
                (size_t)ld, mask, b);
            for (int t = 0; t < 4; t++) _mm512_mask_storeu_ps(out_second + c0 + 16 * t, mask[t], b[t]);
        } else {
            accumulate_one(p_first, visible_first, v + c0, (size_t)ld, mask, a);
        }
        for (int t = 0; t < 4; t++) _mm512_mask_storeu_ps(out_first + c0 + 16 * t, mask[t], a[t]);
    }
}

__attribute__((target("avx512f")))
static void attention_avx512(
    const float *q, const float *k, const float *v, int ld, int length, int head_size, float scale, int causal,
    float *scratch, float *out, int ldo) {
    float *keys = scratch;
    float *first = scratch + (size_t)length * head_size;
    float *second = first + length;
    transpose_keys(k, ld, length, head_size, keys);
    for (int i = 0; i < length; i += 2) {
        int paired = i + 1 < length;
        int visible_first = causal ? i + 1 : length;
        int visible_second = paired ? (causal ? i + 2 : length) : visible_first;
        const float *query = q + (size_t)i * ld;
        attention_scores_avx512(
            query, paired ? query + ld : NULL, keys, length, head_size, visible_second, scale, first, second);
        clipk_softmax(first, (size_t)visible_first);
        if (paired) clipk_softmax(second, (size_t)visible_second);
        float *o = out + (size_t)i * ldo;
        attention_outputs_avx512(
            first, paired ? second : NULL, v, ld, head_size, visible_first, visible_second, o, paired ? o + ldo : NULL);
    }
}

__attribute__((target("avx2,fma")))
static void attention_avx2(
    const float *q, const float *k, const float *v, int ld, int length, int head_size, float scale, int causal,
    float *scratch, float *out, int ldo) {
    attention_head(q, k, v, ld, length, head_size, scale, causal, scratch, out, ldo);
}
#endif

void clipk_attention(
    const float *q, const float *k, const float *v, int ld, int length, int head_size, float scale, int causal,
    float *scratch, float *out, int ldo) {
#if CLIPK_X86
    int level = clipk_level();
    if (level >= 2) {
        attention_avx512(q, k, v, ld, length, head_size, scale, causal, scratch, out, ldo);
        return;
    }
    if (level == 1) {
        attention_avx2(q, k, v, ld, length, head_size, scale, causal, scratch, out, ldo);
        return;
    }
#endif
    attention_head(q, k, v, ld, length, head_size, scale, causal, scratch, out, ldo);
}

static void layer_norm_row(const float *in, int width, const float *scale, const float *shift, float epsilon, float *out) {
    float sum = 0;
    for (int i = 0; i < width; i++) sum += in[i];
    float mean = sum / (float)width;
    float variance = 0;
    for (int i = 0; i < width; i++) variance += (in[i] - mean) * (in[i] - mean);
    float inverse = 1.0f / sqrtf(variance / (float)width + epsilon);
    for (int i = 0; i < width; i++) out[i] = (in[i] - mean) * inverse * scale[i] + shift[i];
}

#if CLIPK_X86
__attribute__((target("avx2,fma")))
static void layer_norm_row_avx2(const float *in, int width, const float *scale, const float *shift, float epsilon, float *out) {
    int i = 0;
    __m256 total = _mm256_setzero_ps();
    for (; i + 8 <= width; i += 8) total = _mm256_add_ps(total, _mm256_loadu_ps(in + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, total);
    float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < width; i++) sum += in[i];
    float mean = sum / (float)width;
    __m256 centre = _mm256_set1_ps(mean);
    __m256 squares = _mm256_setzero_ps();
    for (i = 0; i + 8 <= width; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(in + i), centre);
        squares = _mm256_fmadd_ps(d, d, squares);
    }
    _mm256_storeu_ps(lanes, squares);
    float variance = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < width; i++) variance += (in[i] - mean) * (in[i] - mean);
    float inverse = 1.0f / sqrtf(variance / (float)width + epsilon);
    __m256 factor = _mm256_set1_ps(inverse);
    for (i = 0; i + 8 <= width; i += 8) {
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(in + i), centre), factor);
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(scale + i), _mm256_loadu_ps(shift + i)));
    }
    for (; i < width; i++) out[i] = (in[i] - mean) * inverse * scale[i] + shift[i];
}

#else
static void layer_norm_row_avx2(const float *in, int width, const float *scale, const float *shift, float epsilon, float *out) {
    layer_norm_row(in, width, scale, shift, epsilon, out);
}
#endif

void clipk_layer_norm(const float *in, int rows, int width, const float *scale, const float *shift, float epsilon, float *out) {
    for (int row = 0; row < rows; row++) {
        const float *source = in + (size_t)row * width;
        float *target = out + (size_t)row * width;
        if (avx2()) layer_norm_row_avx2(source, width, scale, shift, epsilon, target);
        else layer_norm_row(source, width, scale, shift, epsilon, target);
    }
}
