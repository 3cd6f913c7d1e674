/*
 * What every system-test program shares with the runner (test/system/machine.ts): where output
 * goes and where the program's memory lives. Included by C (lib.c) and by assembly (.S files, run
 * through the C preprocessor).
 *
 * Output: every program prints with `outb` to the debug port 0xE9, which the runner collects
 * through CpuPlatform.ioOut. Setting SYS_OUTPUT_PORT_E9 to 0 makes every program append its bytes
 * to a mailbox in memory instead (a length and a buffer at a fixed physical address, read by the
 * runner after HLT), as they did before IN/OUT were implemented; crt0 always stores main's result
 * in the mailbox's exit-code word.
 */
#ifndef SYS_H
#define SYS_H

#define SYS_OUTPUT_PORT_E9 1

#define DEBUG_PORT 0xe9

/* Mailbox (physical = virtual in every program): u32 length, u32 exit code, then the bytes. */
#define MAILBOX_ADDR 0x8000
#define MAILBOX_LEN (MAILBOX_ADDR + 0)
#define MAILBOX_EXIT (MAILBOX_ADDR + 4)
#define MAILBOX_BUF (MAILBOX_ADDR + 0x10)
#define MAILBOX_CAP 0x7ff0

#ifndef __ASSEMBLER__

static inline void sys_putc(char c)
{
#if SYS_OUTPUT_PORT_E9
	__asm__ volatile("outb %0, %1" : : "a"(c), "Nd"((unsigned short)DEBUG_PORT));
#else
	volatile unsigned int *len = (volatile unsigned int *)MAILBOX_LEN;
	unsigned int n = *len;
	if (n < MAILBOX_CAP) {
		((volatile char *)MAILBOX_BUF)[n] = c;
		*len = n + 1;
	}
#endif
}

#else /* __ASSEMBLER__ */

/*
 * PUTC16 / PUTC32 / PUTC64: print the byte in %al from real mode (DS base 0), 32-bit protected
 * mode (flat data segment) or long mode. Clobber nothing but the flags.
 */
#if SYS_OUTPUT_PORT_E9
.macro PUTC16
	outb %al, $DEBUG_PORT
.endm
.macro PUTC32
	outb %al, $DEBUG_PORT
.endm
.macro PUTC64
	outb %al, $DEBUG_PORT
.endm
#else
.macro PUTC16
	pushw %bx
	movw MAILBOX_LEN, %bx
	cmpw $MAILBOX_CAP, %bx
	jae .Lputc_full\@
	movb %al, MAILBOX_BUF(%bx)
	incw MAILBOX_LEN
.Lputc_full\@:
	popw %bx
.endm
.macro PUTC32
	pushl %ebx
	movl MAILBOX_LEN, %ebx
	cmpl $MAILBOX_CAP, %ebx
	jae .Lputc_full\@
	movb %al, MAILBOX_BUF(%ebx)
	incl MAILBOX_LEN
.Lputc_full\@:
	popl %ebx
.endm
.macro PUTC64
	pushq %rbx
	movl MAILBOX_LEN, %ebx
	cmpl $MAILBOX_CAP, %ebx
	jae .Lputc_full\@
	movb %al, MAILBOX_BUF(%rbx)
	incl MAILBOX_LEN
.Lputc_full\@:
	popq %rbx
.endm
#endif

#endif /* __ASSEMBLER__ */
#endif /* SYS_H */
