/* Constants of kernel64.S for the assembly programs built on it. */
#ifndef KERNEL64_H
#define KERNEL64_H

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS (0x18 | 3)
#define USER_CS (0x20 | 3)

/* Page-table entry bits (APM vol. 2, 5.4); the C-bit at 51 marks a private page. */
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_US 0x4
#define PTE_PS 0x80
#define PTE_C (1 << 51)

/* Gate types with P = 1 (APM vol. 2, 4.8.3 and 8.9). */
#define GATE_INT 0x8e
#define GATE_TRAP 0x8f
#define GATE_INT_DPL3 0xee

/* The second GiB: mapped on demand by #PF handlers through demand_pt. */
#define DEMAND_VA 0x40000000
/* Physical frames a #PF handler may hand out (8 MiB up, inside the identity map). */
#define DEMAND_FRAMES 0x800000

#endif
