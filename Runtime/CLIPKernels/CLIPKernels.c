#include "CLIPKernels.h"

#include <immintrin.h>
#include <string.h>

enum { ROWS = 6, COLUMNS = 16 };

int clipk_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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

void clipk_gemm(const float *a, int m, int k, const float *packed, int column_start, int column_end, float *c, int ldc) {
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
