/*
 * SYSCALL/SYSRET: the kernel enables them (EFER.SCE; STAR, LSTAR, FMASK), drops to a ring-3
 * function with SYSRETQ; the function makes system call 1 with DF set (FMASK clears DF and IF in
 * the kernel, SYSRETQ restores them from R11), then system call 2, which ends the program.
 */
#include "sys.h"
#include "kernel64.h"

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_FMASK 0xc0000084
#define RFLAGS_TF_IF_DF 0x700

	.text
	.code64
	.globl main64
main64:
	movl $MSR_EFER, %ecx
	rdmsr
	orl $1, %eax			/* SCE */
	wrmsr
	movl $MSR_STAR, %ecx
	xorl %eax, %eax
	movl $((KERNEL_DS & ~3) << 16 | KERNEL_CS), %edx	/* SYSRET base 0x10, SYSCALL CS 0x08 */
	wrmsr
	movl $MSR_LSTAR, %ecx
	leaq syscall_entry(%rip), %rax
	movq %rax, %rdx
	shrq $32, %rdx
	wrmsr
	movl $MSR_FMASK, %ecx
	movl $RFLAGS_TF_IF_DF, %eax
	xorl %edx, %edx
	wrmsr
	leaq msg_title(%rip), %rsi
	call puts

	movq %rsp, kernel_rsp(%rip)
	leaq user_entry(%rip), %rcx
	movl $0x202, %r11d		/* ring 3 runs with IF set */
	leaq user_stack_top(%rip), %rsp
	sysretq

/* Ring 3: RBX tells the kernel where each SYSCALL must return (the kernel checks RCX). */
user_entry:
	movl %cs, %eax			/* call 1 reports the ring-3 CS */
	std
	movl $1, %edi
	leaq 1f(%rip), %rbx
	syscall
1:	pushfq				/* call 2 reports DF and IF as SYSRETQ restored them */
	popq %rax
	andl $RFLAGS_TF_IF_DF, %eax
	cld
	movl $2, %edi
	leaq 2f(%rip), %rbx
	syscall
2:	ud2				/* call 2 does not return */

/* Ring 0, entered on the user stack: switch first. */
syscall_entry:
	movq %rsp, user_rsp(%rip)
	movq kernel_rsp(%rip), %rsp
	pushq %rcx
	pushq %r11
	leaq msg_call(%rip), %rsi
	call puts
	pushq %rax
	movl %edi, %eax
	call puthex4
	leaq msg_rax(%rip), %rsi
	call puts
	popq %rax
	call puthex4
	leaq msg_kflags(%rip), %rsi
	call puts
	pushfq
	popq %rax
	andl $RFLAGS_TF_IF_DF, %eax
	call puthex4
	leaq msg_r11(%rip), %rsi
	call puts
	movq (%rsp), %rax
	andl $RFLAGS_TF_IF_DF, %eax
	call puthex4
	leaq msg_rcx_ok(%rip), %rsi
	cmpq %rbx, 8(%rsp)
	je 1f
	leaq msg_rcx_bad(%rip), %rsi
1:	call puts
	cmpl $2, %edi
	je 2f
	popq %r11
	popq %rcx
	movq user_rsp(%rip), %rsp
	sysretq
2:	leaq msg_done(%rip), %rsi
	call puts
	movq kernel_rsp(%rip), %rsp
	ret				/* from main64, to kernel64's HLT */

	.section .rodata
msg_title:
	.asciz "SYSCALL test\n"
msg_call:
	.asciz "syscall "
msg_rax:
	.asciz " rax="
msg_kflags:
	.asciz " kernel flags="
msg_r11:
	.asciz " r11 flags="
msg_rcx_ok:
	.asciz " rcx ok\n"
msg_rcx_bad:
	.asciz " rcx WRONG\n"
msg_done:
	.asciz "done\n"

	.data
	.balign 8
kernel_rsp:
	.quad 0
user_rsp:
	.quad 0

	.bss
	.balign 16
	.skip 4096
user_stack_top:
