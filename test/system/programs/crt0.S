/*
 * Entry of the 64-bit C programs: the runner starts them at CPL 0 in long mode with flat
 * segments (FlatTranslator, or identity paging it built). Sets the stack from the linker script,
 * runs main, stores its result as the exit code in the mailbox, and halts.
 */
#include "sys.h"

	.section .text.entry, "ax"
	.globl _start
	.code64
_start:
	leaq __stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call main
	movl %eax, MAILBOX_EXIT
1:	hlt
	jmp 1b
