/*
 * Printing for the assembly programs, in 64-bit code: putc (%al), puts (%rsi, NUL-terminated),
 * puthex (%rax as 16 hex digits), puthex4 (%ax as 4). All preserve every register but the flags.
 */
#include "sys.h"

	.text
	.code64
	.globl putc, puts, puthex, puthex4
putc:
	PUTC64
	ret

puts:
	pushq %rax
	pushq %rsi
1:	lodsb
	testb %al, %al
	jz 2f
	PUTC64
	jmp 1b
2:	popq %rsi
	popq %rax
	ret

/* %rax: the number; %rcx: how many low nibbles, most significant first. */
puthex_n:
	pushq %rax
	pushq %rdx
	pushq %rcx
	movq %rax, %rdx
	shlq $2, %rcx
1:	subq $4, %rcx
	movq %rdx, %rax
	shrq %cl, %rax
	andl $0xf, %eax
	movb hexdigits(%rax), %al
	PUTC64
	testq %rcx, %rcx
	jnz 1b
	popq %rcx
	popq %rdx
	popq %rax
	ret

puthex:
	pushq %rcx
	movl $16, %ecx
	call puthex_n
	popq %rcx
	ret

puthex4:
	pushq %rcx
	movl $4, %ecx
	call puthex_n
	popq %rcx
	ret

	.section .rodata
hexdigits:
	.ascii "0123456789abcdef"
