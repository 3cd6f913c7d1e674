/*
 * IDT delivery of #PF with a handler that maps the page and returns: a store and a load into the
 * unmapped second GiB fault once per page; the handler checks CR2, the error code and the saved
 * RIP, maps a fresh zeroed frame, and IRETQ restarts the access, which then succeeds.
 */
#include "sys.h"
#include "kernel64.h"

	.text
	.code64
	.globl main64
main64:
	movl $14, %edi
	leaq pf_handler(%rip), %rsi
	movl $GATE_INT, %edx
	call set_gate
	leaq msg_title(%rip), %rsi
	call puts

	movl $(DEMAND_VA + 0x1238), %ebx
	movabsq $0x1122334455667788, %rax
	leaq fault_store(%rip), %rcx
	movq %rcx, expect_rip(%rip)
fault_store:
	movq %rax, (%rbx)		/* #PF: write, not present */
	movq (%rbx), %rcx		/* the same page: no fault */
	leaq fault_load(%rip), %rdx
	movq %rdx, expect_rip(%rip)
fault_load:
	movq DEMAND_VA + 0x3000, %rdx	/* #PF: read, not present; the new frame reads zero */

	leaq msg_read(%rip), %rsi
	call puts
	movq %rcx, %rax
	call puthex
	leaq msg_and(%rip), %rsi
	call puts
	movq %rdx, %rax
	call puthex
	leaq msg_faults(%rip), %rsi
	call puts
	movq faults(%rip), %rax
	call puthex4
	movb $'\n', %al
	call putc
	ret

/* Frame: error code, RIP, CS, RFLAGS, RSP, SS. */
pf_handler:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	incq faults(%rip)
	leaq msg_pf(%rip), %rsi
	call puts
	movq %cr2, %rax
	call puthex
	leaq msg_err(%rip), %rsi
	call puts
	movq 40(%rsp), %rax
	call puthex
	leaq msg_rip_ok(%rip), %rsi
	movq 48(%rsp), %rax
	cmpq expect_rip(%rip), %rax
	je 1f
	leaq msg_rip_bad(%rip), %rsi
1:	call puts
	/* A zeroed frame for the page of CR2, mapped user-accessible and writable, private. */
	movq next_frame(%rip), %rdi
	addq $0x1000, next_frame(%rip)
	movq %rdi, %rdx
	xorl %eax, %eax
	movl $512, %ecx
	rep stosq
	movq %cr2, %rax
	subq $DEMAND_VA, %rax
	shrq $12, %rax
	movabsq $(PTE_C | PTE_P | PTE_RW | PTE_US), %rcx
	orq %rcx, %rdx
	leaq demand_pt(%rip), %rcx
	movq %rdx, (%rcx,%rax,8)
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $8, %rsp			/* the error code */
	iretq

	.section .rodata
msg_title:
	.asciz "#PF test\n"
msg_pf:
	.asciz "#PF cr2="
msg_err:
	.asciz " err="
msg_rip_ok:
	.asciz " rip ok\n"
msg_rip_bad:
	.asciz " rip WRONG\n"
msg_read:
	.asciz "read back "
msg_and:
	.asciz " and "
msg_faults:
	.asciz ", faults "

	.data
	.balign 8
next_frame:
	.quad DEMAND_FRAMES
expect_rip:
	.quad 0
faults:
	.quad 0
