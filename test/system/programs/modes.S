/*
 * From reset to long mode, as firmware does it: starts in real mode at the reset vector (the
 * runner's reset-like state: CS base 0xF0000, IP 0xFFF0), prints R; loads a GDT and sets CR0.PE,
 * far-jumps to 32-bit code, prints P; builds identity page tables for 16 MiB (2 MiB pages, C-bit
 * set), sets CR4.PAE, CR3, EFER.LME and CR0.PG, far-jumps to 64-bit code, prints L; then prints
 * the control registers and EFER as long mode sees them, and halts.
 */
#include "sys.h"

#define ROM_BASE 0xf0000
#define STACK_TOP 0x7000
#define PT_BASE 0x10000			/* PML4, PDPT, PD: three pages */
#define PTE_C_HI 0x80000		/* bit 51 of an entry, in its high dword */
#define MSR_EFER 0xc0000080

	.section .text.rom, "ax"
	.code16
start16:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw $STACK_TOP, %sp
	movb $'R', %al
	PUTC16
	lgdtl %cs:(gdtr - ROM_BASE)
	movl %cr0, %eax
	orl $1, %eax			/* PE */
	movl %eax, %cr0
	ljmpl $0x08, $start32

	.code32
start32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $STACK_TOP, %esp
	movb $'P', %al
	PUTC32
	/* Clear the three tables. */
	movl $PT_BASE, %edi
	movl $(3 * 4096 / 4), %ecx
	xorl %eax, %eax
1:	movl %eax, (%edi)
	addl $4, %edi
	decl %ecx
	jnz 1b
	movl $(PT_BASE + 0x1000 + 3), PT_BASE		/* PML4[0] -> PDPT, P RW */
	movl $PTE_C_HI, PT_BASE + 4
	movl $(PT_BASE + 0x2000 + 3), PT_BASE + 0x1000	/* PDPT[0] -> PD */
	movl $PTE_C_HI, PT_BASE + 0x1004
	movl $(PT_BASE + 0x2000), %edi			/* PD[0..7]: 2 MiB pages, P RW PS */
	movl $0x83, %eax
	movl $8, %ecx
2:	movl %eax, (%edi)
	movl $PTE_C_HI, 4(%edi)
	addl $0x200000, %eax
	addl $8, %edi
	decl %ecx
	jnz 2b
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $PT_BASE, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax		/* PG: long mode becomes active */
	movl %eax, %cr0
	ljmpl $0x18, $start64

	.code64
start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $STACK_TOP, %esp
	movb $'L', %al
	PUTC64
	movb $'\n', %al
	call putc
	leaq msg_cs(%rip), %rsi
	call puts
	movl %cs, %eax
	call puthex4
	leaq msg_cr0(%rip), %rsi
	call puts
	movq %cr0, %rax
	call puthex
	leaq msg_cr4(%rip), %rsi
	call puts
	movq %cr4, %rax
	call puthex
	leaq msg_efer(%rip), %rsi
	call puts
	movl $MSR_EFER, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	call puthex
	movb $'\n', %al
	call putc
1:	hlt
	jmp 1b

	.section .rodata
msg_cs:
	.asciz "cs="
msg_cr0:
	.asciz " cr0="
msg_cr4:
	.asciz " cr4="
msg_efer:
	.asciz " efer="

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08: code, 32-bit, 4 GiB, accessed */
	.quad 0x00cf93000000ffff	/* 0x10: data, 4 GiB, accessed */
	.quad 0x00af9b000000ffff	/* 0x18: code, 64-bit (L) */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdtr:
	.word gdt_end - gdt - 1
	.long gdt

/* The reset vector, the ROM's last 16 bytes. */
	.section .reset, "ax"
	.code16
	jmp start16
	.balign 16, 0xf4
