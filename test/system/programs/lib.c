#include "lib.h"
#include "sys.h"

/* A 64-bit word that may alias anything (memcpy's callers pass any type). */
typedef uint64_t __attribute__((may_alias)) word_t;

/* Eight bytes at a time where source and destination are both aligned, as a libc would. */
void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
		for (; n >= 8; n -= 8, d += 8, s += 8)
			*(word_t *)d = *(const word_t *)s;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

void putchar_(char c)
{
	sys_putc(c);
}

void puts_(const char *s)
{
	while (*s)
		sys_putc(*s++);
}

/* Output cursor of vformat: counts every byte, stores those that fit (one byte kept for NUL). */
struct sink {
	char *out;
	size_t cap;
	size_t n;
};

static void emit(struct sink *k, char c)
{
	if (k->n + 1 < k->cap)
		k->out[k->n] = c;
	k->n++;
}

static void emit_padded(struct sink *k, const char *s, size_t len, int width, int left, char pad)
{
	int fill = width > (int)len ? width - (int)len : 0;
	if (!left && pad == '0' && len > 0 && s[0] == '-') {
		/* Zero padding goes between the sign and the digits. */
		emit(k, '-');
		s++;
		len--;
	}
	if (!left)
		while (fill-- > 0)
			emit(k, pad);
	for (size_t i = 0; i < len; i++)
		emit(k, s[i]);
	if (left)
		while (fill-- > 0)
			emit(k, ' ');
}

/* Digits of v in `base` into the end of buf[24]; returns the first digit's index. */
static int utoa(uint64_t v, unsigned base, int upper, char *buf)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int i = 24;
	do {
		buf[--i] = digits[v % base];
		v /= base;
	} while (v != 0);
	return i;
}

int vformat(char *out, size_t cap, const char *fmt, va_list ap)
{
	struct sink k = { out, cap, 0 };
	char buf[25];
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			emit(&k, *p);
			continue;
		}
		p++;
		int left = 0;
		char pad = ' ';
		for (;; p++) {
			if (*p == '-')
				left = 1;
			else if (*p == '0')
				pad = '0';
			else
				break;
		}
		int width = 0;
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		int longs = 0;
		while (*p == 'l' || *p == 'z') {
			longs++;
			p++;
		}
		switch (*p) {
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			emit_padded(&k, buf, 1, width, left, ' ');
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			emit_padded(&k, s, strlen(s), width, left, ' ');
			break;
		}
		case 'd':
		case 'i': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
			int i = utoa(mag, 10, 0, buf);
			if (v < 0)
				buf[--i] = '-';
			emit_padded(&k, buf + i, 24 - i, width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			int i = utoa(v, *p == 'u' ? 10 : 16, *p == 'X', buf);
			emit_padded(&k, buf + i, 24 - i, width, left, pad);
			break;
		}
		case 'p': {
			int i = utoa((uintptr_t)va_arg(ap, void *), 16, 0, buf);
			buf[--i] = 'x';
			buf[--i] = '0';
			emit_padded(&k, buf + i, 24 - i, width, left, ' ');
			break;
		}
		case '%':
			emit(&k, '%');
			break;
		case '\0':
			p--;
			break;
		default:
			emit(&k, '%');
			emit(&k, *p);
		}
	}
	if (k.cap > 0)
		k.out[k.n < k.cap ? k.n : k.cap - 1] = '\0';
	return (int)k.n;
}

int format(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vformat(out, cap, fmt, ap);
	va_end(ap);
	return n;
}

int printf_(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vformat(line, sizeof line, fmt, ap);
	va_end(ap);
	puts_(line);
	return n;
}
