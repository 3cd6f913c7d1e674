/*
 * Shared long-mode set-up of the 64-bit assembly programs (pf.S, interrupts.S, syscall.S). The
 * runner starts them at CPL 0 in long mode on its own identity page tables; this code installs
 * the program's own descriptor tables and page tables, so everything it relies on is its own:
 *
 *   GDT: 0x08 kernel code64, 0x10 kernel data, 0x18 user data (DPL 3), 0x20 user code64 (DPL 3)
 *        (the order SYSRET needs: STAR[63:48] = 0x10 gives SS 0x1b and CS 0x23)
 *   IDT: vectors 0..31 go to `unexpected`, which prints the vector, error code and RIP and halts;
 *        set_gate installs a program's handlers
 *   Paging: 4 levels, identity over the first 16 MiB with user-accessible writable pages (C-bit
 *        set: this machine is an SEV-SNP guest owning all its memory), page 0 not present; the
 *        second GiB (DEMAND_VA) has an empty page table, `demand_pt`, for #PF handlers to fill.
 *
 * Then it calls main64 with interrupts disabled and DF clear, and halts when main64 returns.
 */
#include "sys.h"
#include "kernel64.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	cld
	leaq __stack_top(%rip), %rsp
	lgdt gdtr(%rip)
	pushq $KERNEL_CS
	leaq 1f(%rip), %rax
	pushq %rax
	lretq
1:	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	call build_page_tables
	leaq pml4(%rip), %rax
	movabsq $PTE_C, %rdx
	orq %rdx, %rax
	movq %rax, %cr3
	call build_idt
	lidt idtr(%rip)
	call main64
2:	hlt
	jmp 2b

	.text
build_page_tables:
	movabsq $(PTE_C | PTE_P | PTE_RW | PTE_US), %r8
	leaq pdpt(%rip), %rax
	orq %r8, %rax
	movq %rax, pml4(%rip)
	leaq pd0(%rip), %rax
	orq %r8, %rax
	movq %rax, pdpt(%rip)
	leaq pd1(%rip), %rax
	orq %r8, %rax
	movq %rax, pdpt+8(%rip)
	leaq pt0(%rip), %rax
	orq %r8, %rax
	movq %rax, pd0(%rip)
	leaq demand_pt(%rip), %rax
	orq %r8, %rax
	movq %rax, pd1(%rip)
	/* pt0[1..511]: 4 KiB pages 0x1000..0x1ff000. */
	leaq pt0(%rip), %rdi
	movl $1, %ecx
1:	movq %rcx, %rax
	shlq $12, %rax
	orq %r8, %rax
	movq %rax, (%rdi,%rcx,8)
	incl %ecx
	cmpl $512, %ecx
	jb 1b
	/* pd0[1..7]: 2 MiB pages 2..16 MiB. */
	leaq pd0(%rip), %rdi
	movl $1, %ecx
2:	movq %rcx, %rax
	shlq $21, %rax
	orq %r8, %rax
	orq $PTE_PS, %rax
	movq %rax, (%rdi,%rcx,8)
	incl %ecx
	cmpl $8, %ecx
	jb 2b
	ret

/* set_gate: %edi vector, %rsi handler, %edx type and attributes (GATE_*). Clobbers %rax, %rdi. */
	.globl set_gate
set_gate:
	shll $4, %edi
	leaq idt(%rip), %rax
	addq %rax, %rdi
	movw %si, (%rdi)
	movw $KERNEL_CS, 2(%rdi)
	movb $0, 4(%rdi)
	movb %dl, 5(%rdi)
	movq %rsi, %rax
	shrq $16, %rax
	movw %ax, 6(%rdi)
	shrq $16, %rax
	movl %eax, 8(%rdi)
	movl $0, 12(%rdi)
	ret

build_idt:
	xorl %ebx, %ebx
1:	movl %ebx, %edi
	leaq stubs(%rip), %rax
	movq (%rax,%rbx,8), %rsi
	movl $GATE_INT, %edx
	call set_gate
	incl %ebx
	cmpl $32, %ebx
	jb 1b
	ret

/* Exceptions 0..31 without a handler: push a zero error code where the CPU pushes none. */
.macro STUB v
stub_\v:
	.if (\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushq $0
	.endif
	pushq $\v
	jmp unexpected
.endm
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB \v
	.endr

unexpected:
	leaq msg_unexpected(%rip), %rsi
	call puts
	movq (%rsp), %rax
	call puthex4
	leaq msg_error(%rip), %rsi
	call puts
	movq 8(%rsp), %rax
	call puthex
	leaq msg_rip(%rip), %rsi
	call puts
	movq 16(%rsp), %rax
	call puthex
	movb $'\n', %al
	call putc
1:	cli
	hlt
	jmp 1b

	.section .rodata
stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad stub_\v
	.endr
msg_unexpected:
	.asciz "unexpected exception "
msg_error:
	.asciz " error "
msg_rip:
	.asciz " rip "

	.data
	.balign 8
gdt:
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08: code, 64-bit (L), DPL 0, accessed */
	.quad 0x00cf93000000ffff	/* 0x10: data, writable, DPL 0 */
	.quad 0x00cff3000000ffff	/* 0x18: data, writable, DPL 3 */
	.quad 0x00affb000000ffff	/* 0x20: code, 64-bit (L), DPL 3 */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdtr:
	.word gdt_end - gdt - 1
	.quad gdt
	.word 0, 0, 0
idtr:
	.word 256 * 16 - 1
	.quad idt

	.bss
	.balign 4096
	.globl demand_pt
pml4:	.skip 4096
pdpt:	.skip 4096
pd0:	.skip 4096
pd1:	.skip 4096
pt0:	.skip 4096
demand_pt:
	.skip 4096
idt:	.skip 256 * 16
