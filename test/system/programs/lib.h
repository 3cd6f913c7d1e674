/* The little C library of the system-test programs (freestanding: no libc). */
#ifndef LIB_H
#define LIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* gcc may emit calls to these four even with -ffreestanding (struct copies, large zeroing). */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

void putchar_(char c);
void puts_(const char *s);

/*
 * printf subset: %c %s %d %i %u %x %X %p %%, length l/ll/z, flags '-' and '0', a width.
 * Returns the number of bytes produced.
 */
int vformat(char *out, size_t cap, const char *fmt, va_list ap);
int format(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int printf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
