/*
 * The C workload (issue 5's "C workload" figure and a system test): SHA-256 of the FIPS 180 test
 * vectors and of a pseudo-random buffer, a bottom-up merge sort and an iterative quicksort of
 * pseudo-random 64-bit values with a checksum, and some printf-style formatting. The expected
 * output is computed independently by test/system/workload-expected.ts (keep the constants in step).
 */
#include "lib.h"
#include "sha256.h"

#define HASH_BYTES 32768
#define SORT_COUNT 4000
#define HASH_SEED 0x0123456789abcdefull
#define SORT_SEED 0xfedcba9876543210ull

/* splitmix64 (Steele, Lea, Flood 2014): a 64-bit state, one add, three xor-shift-multiplies. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void print_digest(const char *label, const void *data, size_t n)
{
	struct sha256 s;
	uint8_t d[32];
	sha256_init(&s);
	sha256_update(&s, data, n);
	sha256_final(&s, d);
	printf_("sha256(%s) = ", label);
	for (int i = 0; i < 32; i++)
		printf_("%02x", d[i]);
	putchar_('\n');
}

static uint8_t hash_buf[HASH_BYTES];
static uint64_t values[SORT_COUNT], scratch[SORT_COUNT];

/* Bottom-up merge sort, merging back and forth between a and tmp; the result ends in a. */
static void merge_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
	uint64_t *src = a, *dst = tmp;
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = src[j] < src[i] ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		uint64_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
}

/* Hoare partition, median-of-three pivot, an explicit stack; the smaller side is pushed last. */
static void quick_sort(uint64_t *a, size_t n)
{
	size_t stack[128];
	int top = 0;
	if (n < 2)
		return;
	stack[top++] = 0;
	stack[top++] = n - 1;
	while (top > 0) {
		size_t hi = stack[--top], lo = stack[--top];
		while (lo < hi) {
			if (hi - lo < 8) {
				for (size_t i = lo + 1; i <= hi; i++) {
					uint64_t v = a[i];
					size_t j = i;
					for (; j > lo && a[j - 1] > v; j--)
						a[j] = a[j - 1];
					a[j] = v;
				}
				break;
			}
			size_t mid = lo + (hi - lo) / 2;
			uint64_t x = a[lo], y = a[mid], z = a[hi];
			uint64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
			size_t i = lo - 1, j = hi + 1;
			for (;;) {
				do
					i++;
				while (a[i] < pivot);
				do
					j--;
				while (a[j] > pivot);
				if (i >= j)
					break;
				uint64_t t = a[i];
				a[i] = a[j];
				a[j] = t;
			}
			/* [lo, j] and [j+1, hi]: loop on the smaller, push the larger. */
			if (j - lo < hi - j) {
				stack[top++] = j + 1;
				stack[top++] = hi;
				hi = j;
			} else {
				stack[top++] = lo;
				stack[top++] = j;
				lo = j + 1;
			}
		}
	}
}

static void fill_values(void)
{
	uint64_t state = SORT_SEED;
	for (size_t i = 0; i < SORT_COUNT; i++)
		values[i] = splitmix64(&state);
}

/* Position-weighted checksum (so a permutation that is not the sorted one changes it). */
static void report_sorted(const char *name)
{
	uint64_t sum = 0;
	size_t inversions = 0;
	for (size_t i = 0; i < SORT_COUNT; i++) {
		sum = (sum ^ values[i]) * 0x100000001b3ull + i;
		if (i > 0 && values[i - 1] > values[i])
			inversions++;
	}
	printf_("%s %u: inversions %zu checksum %016lx min %016lx max %016lx\n", name,
		(unsigned)SORT_COUNT, inversions, sum, values[0], values[SORT_COUNT - 1]);
}

static void formatting(void)
{
	char line[128];
	int n = format(line, sizeof line, "[%5d|%-5d|%05d|%x|%6X|%s|%-4s|%c%c]", -42, -42, -42,
		       0xbeefu, 0xcafeu, "str", "ab", 'o', 'k');
	printf_("format: %s (%d bytes)\n", line, n);
	printf_("format: %lu %ld %ld %lx\n", (uint64_t)18446744073709551615ull,
		(int64_t)-9223372036854775807ll - 1,
		(int64_t)1234567890123ll, (uint64_t)0xfedcba9876543210ull);
	char small[8];
	n = format(small, sizeof small, "%s", "truncated output");
	printf_("format: truncated to \"%s\" of %d\n", small, n);
}

int main(void)
{
	print_digest("\"\"", "", 0);
	print_digest("\"abc\"", "abc", 3);
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	print_digest("448 bits", m448, strlen(m448));
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
			   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	print_digest("896 bits", m896, strlen(m896));
	uint64_t state = HASH_SEED;
	for (size_t i = 0; i < HASH_BYTES; i += 8) {
		uint64_t v = splitmix64(&state);
		for (int b = 0; b < 8; b++)
			hash_buf[i + b] = (uint8_t)(v >> (8 * b));
	}
	char label[40];
	format(label, sizeof label, "splitmix64 %u bytes", (unsigned)HASH_BYTES);
	print_digest(label, hash_buf, HASH_BYTES);

	fill_values();
	merge_sort(values, scratch, SORT_COUNT);
	report_sorted("merge sort");
	fill_values();
	quick_sort(values, SORT_COUNT);
	report_sorted("quicksort");

	formatting();
	puts_("done\n");
	return 0;
}
