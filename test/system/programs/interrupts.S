/*
 * IDT delivery of software interrupts and faults, no timer: INT 0x80 through an interrupt gate
 * (IF cleared in the handler, restored by IRETQ), INT3 through a trap gate (IF kept; the saved RIP
 * is the next instruction) and #UD from UD2 (a fault: the saved RIP is the UD2, which the handler
 * skips).
 */
#include "sys.h"
#include "kernel64.h"

#define RFLAGS_IF 0x200

	.text
	.code64
	.globl main64
main64:
	movl $0x80, %edi
	leaq int80_handler(%rip), %rsi
	movl $GATE_INT, %edx
	call set_gate
	movl $3, %edi
	leaq bp_handler(%rip), %rsi
	movl $GATE_TRAP, %edx
	call set_gate
	movl $6, %edi
	leaq ud_handler(%rip), %rsi
	movl $GATE_INT, %edx
	call set_gate
	leaq msg_title(%rip), %rsi
	call puts

	sti				/* no interrupt source: IF only shows what the gates do */
	movl $0x1234, %eax
	int $0x80
	movq %rax, %rbx
	pushfq
	popq %rcx
	leaq msg_back(%rip), %rsi
	call puts
	movq %rbx, %rax
	call puthex4
	leaq msg_if(%rip), %rsi
	call puts
	movq %rcx, %rax
	shrq $9, %rax
	andl $1, %eax
	call puthex4
	movb $'\n', %al
	call putc

	leaq after_int3(%rip), %rax
	movq %rax, expect_rip(%rip)
	int3
after_int3:
	leaq at_ud2(%rip), %rax
	movq %rax, expect_rip(%rip)
at_ud2:
	ud2
	leaq msg_done(%rip), %rsi
	call puts
	cli
	ret

int80_handler:
	pushq %rax
	leaq msg_int80(%rip), %rsi
	call puts
	call puthex4
	leaq msg_if(%rip), %rsi
	call puts
	pushfq
	popq %rax
	shrq $9, %rax
	andl $1, %eax
	call puthex4
	movb $'\n', %al
	call putc
	popq %rax
	addl %eax, %eax			/* the "system call" result */
	iretq

/* Frame: RIP, CS, RFLAGS, RSP, SS. */
bp_handler:
	leaq msg_bp(%rip), %rsi
	call puts
	call print_rip_check
	leaq msg_if(%rip), %rsi
	call puts
	pushfq
	popq %rax
	shrq $9, %rax
	andl $1, %eax
	call puthex4
	movb $'\n', %al
	call putc
	iretq

ud_handler:
	leaq msg_ud(%rip), %rsi
	call puts
	call print_rip_check
	movb $'\n', %al
	call putc
	addq $2, (%rsp)			/* resume after the UD2 */
	iretq

/* Prints " rip ok" if the interrupted RIP (above our return address) is expect_rip. */
print_rip_check:
	movq 8(%rsp), %rax
	leaq msg_rip_ok(%rip), %rsi
	cmpq expect_rip(%rip), %rax
	je 1f
	leaq msg_rip_bad(%rip), %rsi
1:	call puts
	ret

	.section .rodata
msg_title:
	.asciz "INT test\n"
msg_int80:
	.asciz "int 0x80 rax="
msg_if:
	.asciz " if="
msg_back:
	.asciz "returned rax="
msg_bp:
	.asciz "#BP"
msg_ud:
	.asciz "#UD"
msg_rip_ok:
	.asciz " rip ok"
msg_rip_bad:
	.asciz " rip WRONG"
msg_done:
	.asciz "done\n"

	.data
	.balign 8
expect_rip:
	.quad 0
