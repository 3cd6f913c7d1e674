/*
 * Differential-test harness: runs one x86-64 instruction natively on the host CPU from a given
 * register and flag state and prints the resulting state, so the simulator's interpreter can be
 * compared with real silicon. Built by test/difftest/build.ts with the system gcc at test time.
 *
 * Address space (fixed, identical in the simulator):
 *   CODE  0x10000000  one RWX page: landing stubs, the instruction at CODE+0x100, a control area
 *   DATA  0x10010000  0x2000 bytes of test data (filled from a per-test seed), stack inside it
 * Protocol, one test per stdin line (hex, space separated):
 *   T <code bytes> <seed> <rflags> <rax> ... <r15> <n> [<data offset> <qword>]*n
 * answered by one stdout line:
 *   R <landing id or -1> <signal or 0> <rip> <rflags> <rax> ... <r15> <n> [<data offset> <qword>]*n
 * listing the data qwords that differ from the initial contents. A test line may end with
 *   X <mxcsr> <xmm0 low> <xmm0 high> ... <xmm15 high>
 * to set MXCSR and XMM0-15 (otherwise MXCSR = 0x1f80 and the XMM registers are zero); the answer
 * then ends with the same section holding their final values. After it may come
 *   F <fcw> <n> (<significand> <sign and exponent>)*n
 * to start from FNINIT, FLDCW fcw and n 80-bit values loaded (ST0 first, by FLD m80, which loads
 * any encoding unchanged and raises nothing); the answer then ends with
 *   F <fcw> <fsw> <abridged ftw> (<significand> <sign and exponent>)*8
 * (ST0..ST7 as FXSAVE stores them).
 *
 * Normal completion needs no signal: every landing point in the code page stores its id and
 * jumps to `hx_save`, which stores all registers and RFLAGS. Faults arrive as signals, handled on
 * an alternate stack, and leave through siglongjmp.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define CODE 0x10000000UL
#define DATA 0x10010000UL
#define DATA_SIZE 0x2000
#define INSN_OFF 0x100
#define LAND_ID_OFF 0xf00   /* byte: id of the landing point reached */
#define SAVE_PTR_OFF 0xf08  /* qword: address of hx_save */

/* Landing points for taken branches (offsets in the code page); the fall-through one follows
 * the instruction and has id 0. Keep in sync with difftest/layout.ts. */
static const uint32_t LANDINGS[] = {0, 0x000, 0x040, 0x0c0, 0x140, 0x400, 0x800, 0xc00};
#define NLAND (sizeof LANDINGS / sizeof LANDINGS[0])

uint64_t hx_in[16], hx_in_flags, hx_out[16], hx_out_flags, hx_host_rsp, hx_target;
uint64_t hx_priv_stack[64];
uint64_t hx_in_xmm[32] __attribute__((aligned(16))), hx_out_xmm[32] __attribute__((aligned(16)));
uint32_t hx_in_mxcsr = 0x1f80, hx_out_mxcsr, hx_default_mxcsr = 0x1f80;
uint8_t hx_out_fx[512] __attribute__((aligned(16)));

void hx_run(void);
__asm__(
    ".text\n"
    ".globl hx_run\n"
    "hx_run:\n"
    "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  mov %rsp, hx_host_rsp(%rip)\n"
    "  pushq hx_in_flags(%rip)\n"
    "  popfq\n"
    "  mov hx_in+0(%rip), %rax\n mov hx_in+8(%rip), %rcx\n mov hx_in+16(%rip), %rdx\n"
    "  mov hx_in+24(%rip), %rbx\n mov hx_in+40(%rip), %rbp\n mov hx_in+48(%rip), %rsi\n"
    "  mov hx_in+56(%rip), %rdi\n mov hx_in+64(%rip), %r8\n mov hx_in+72(%rip), %r9\n"
    "  mov hx_in+80(%rip), %r10\n mov hx_in+88(%rip), %r11\n mov hx_in+96(%rip), %r12\n"
    "  mov hx_in+104(%rip), %r13\n mov hx_in+112(%rip), %r14\n mov hx_in+120(%rip), %r15\n"
    "  ldmxcsr hx_in_mxcsr(%rip)\n"
    "  movdqu hx_in_xmm+0(%rip), %xmm0\n"
    "  movdqu hx_in_xmm+16(%rip), %xmm1\n"
    "  movdqu hx_in_xmm+32(%rip), %xmm2\n"
    "  movdqu hx_in_xmm+48(%rip), %xmm3\n"
    "  movdqu hx_in_xmm+64(%rip), %xmm4\n"
    "  movdqu hx_in_xmm+80(%rip), %xmm5\n"
    "  movdqu hx_in_xmm+96(%rip), %xmm6\n"
    "  movdqu hx_in_xmm+112(%rip), %xmm7\n"
    "  movdqu hx_in_xmm+128(%rip), %xmm8\n"
    "  movdqu hx_in_xmm+144(%rip), %xmm9\n"
    "  movdqu hx_in_xmm+160(%rip), %xmm10\n"
    "  movdqu hx_in_xmm+176(%rip), %xmm11\n"
    "  movdqu hx_in_xmm+192(%rip), %xmm12\n"
    "  movdqu hx_in_xmm+208(%rip), %xmm13\n"
    "  movdqu hx_in_xmm+224(%rip), %xmm14\n"
    "  movdqu hx_in_xmm+240(%rip), %xmm15\n"
    "  mov hx_in+32(%rip), %rsp\n"
    "  jmp *hx_target(%rip)\n"
    ".globl hx_save\n"
    "hx_save:\n"
    "  mov %rax, hx_out+0(%rip)\n mov %rcx, hx_out+8(%rip)\n mov %rdx, hx_out+16(%rip)\n"
    "  mov %rbx, hx_out+24(%rip)\n mov %rsp, hx_out+32(%rip)\n mov %rbp, hx_out+40(%rip)\n"
    "  mov %rsi, hx_out+48(%rip)\n mov %rdi, hx_out+56(%rip)\n mov %r8, hx_out+64(%rip)\n"
    "  mov %r9, hx_out+72(%rip)\n mov %r10, hx_out+80(%rip)\n mov %r11, hx_out+88(%rip)\n"
    "  mov %r12, hx_out+96(%rip)\n mov %r13, hx_out+104(%rip)\n mov %r14, hx_out+112(%rip)\n"
    "  mov %r15, hx_out+120(%rip)\n"
    "  movdqu %xmm0, hx_out_xmm+0(%rip)\n"
    "  movdqu %xmm1, hx_out_xmm+16(%rip)\n"
    "  movdqu %xmm2, hx_out_xmm+32(%rip)\n"
    "  movdqu %xmm3, hx_out_xmm+48(%rip)\n"
    "  movdqu %xmm4, hx_out_xmm+64(%rip)\n"
    "  movdqu %xmm5, hx_out_xmm+80(%rip)\n"
    "  movdqu %xmm6, hx_out_xmm+96(%rip)\n"
    "  movdqu %xmm7, hx_out_xmm+112(%rip)\n"
    "  movdqu %xmm8, hx_out_xmm+128(%rip)\n"
    "  movdqu %xmm9, hx_out_xmm+144(%rip)\n"
    "  movdqu %xmm10, hx_out_xmm+160(%rip)\n"
    "  movdqu %xmm11, hx_out_xmm+176(%rip)\n"
    "  movdqu %xmm12, hx_out_xmm+192(%rip)\n"
    "  movdqu %xmm13, hx_out_xmm+208(%rip)\n"
    "  movdqu %xmm14, hx_out_xmm+224(%rip)\n"
    "  movdqu %xmm15, hx_out_xmm+240(%rip)\n"
    "  stmxcsr hx_out_mxcsr(%rip)\n"
    "  ldmxcsr hx_default_mxcsr(%rip)\n"
    "  fxsave64 hx_out_fx(%rip)\n"
    "  fninit\n"
    "  lea hx_priv_stack+256(%rip), %rsp\n"
    "  pushfq\n"
    "  popq hx_out_flags(%rip)\n"
    "  mov hx_host_rsp(%rip), %rsp\n"
    "  cld\n"
    "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
    "  ret\n");
void hx_save(void);

static sigjmp_buf fault_env;
static volatile int fault_sig;
static uint64_t fault_regs[16], fault_rip, fault_flags, fault_xmm[32];
static uint32_t fault_mxcsr;
static uint8_t fault_fx[512];

static void on_fault(int sig, siginfo_t *si, void *ctx) {
  (void)si;
  ucontext_t *uc = ctx;
  greg_t *g = uc->uc_mcontext.gregs;
  static const int map[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                              REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
  for (int i = 0; i < 16; i++) fault_regs[i] = (uint64_t)g[map[i]];
  fault_rip = (uint64_t)g[REG_RIP];
  fault_flags = (uint64_t)g[REG_EFL];
  if (uc->uc_mcontext.fpregs) {
    fault_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
    memcpy(fault_xmm, uc->uc_mcontext.fpregs->_xmm, sizeof fault_xmm);
    memcpy(fault_fx, uc->uc_mcontext.fpregs, sizeof fault_fx);
  }
  fault_sig = sig;
  siglongjmp(fault_env, 1);
}

/* The data pattern: xorshift32 from the seed, one word per 4 bytes (same in pattern.ts). */
static void fill(uint8_t *p, uint32_t seed) {
  uint32_t x = seed ? seed : 0x9e3779b9u;
  for (int i = 0; i < DATA_SIZE; i += 4) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    memcpy(p + i, &x, 4);
  }
}

static void stub(uint8_t *code, uint32_t off, uint8_t id) {
  uint8_t *p = code + off;
  /* mov byte [rip+LAND_ID], id */
  int32_t rel = (int32_t)(LAND_ID_OFF - (off + 7));
  p[0] = 0xc6; p[1] = 0x05; memcpy(p + 2, &rel, 4); p[6] = id;
  /* jmp [rip+SAVE_PTR] */
  rel = (int32_t)(SAVE_PTR_OFF - (off + 13));
  p[7] = 0xff; p[8] = 0x25; memcpy(p + 9, &rel, 4);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int main(void) {
  uint8_t *code = mmap((void *)CODE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  uint8_t *data = mmap((void *)DATA, DATA_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (code != (uint8_t *)CODE || data != (uint8_t *)DATA) {
    fprintf(stderr, "harness: cannot map the fixed test pages\n");
    return 2;
  }
  static uint8_t altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGILL, &sa, NULL);
  sigaction(SIGFPE, &sa, NULL);
  sigaction(SIGTRAP, &sa, NULL);

  static uint8_t initial[DATA_SIZE];
  static char line[1 << 16];
  setvbuf(stdout, NULL, _IOFBF, 1 << 20);
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] != 'T') continue;
    char *s = line + 2;
    /* code bytes */
    uint8_t insn[32];
    int n = 0;
    while (*s && *s != ' ' && n < 32) {
      insn[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
      s += 2;
    }
    uint32_t seed = (uint32_t)strtoul(s, &s, 16);
    hx_in_flags = strtoull(s, &s, 16);
    for (int i = 0; i < 16; i++) hx_in[i] = strtoull(s, &s, 16);
    int nov = (int)strtol(s, &s, 16);

    memset(code, 0xcc, 0x1000);
    for (unsigned k = 1; k < NLAND; k++) stub(code, LANDINGS[k], (uint8_t)k);
    memcpy(code + INSN_OFF, insn, (size_t)n);
    stub(code, INSN_OFF + (uint32_t)n, 0);
    code[LAND_ID_OFF] = 0xff;
    uint64_t save = (uint64_t)(uintptr_t)hx_save;
    memcpy(code + SAVE_PTR_OFF, &save, 8);
    hx_target = CODE + INSN_OFF;

    fill(data, seed);
    for (int k = 0; k < nov; k++) {
      uint64_t off = strtoull(s, &s, 16);
      uint64_t val = strtoull(s, &s, 16);
      if (off + 8 <= DATA_SIZE) memcpy(data + off, &val, 8);
    }
    while (*s == ' ') s++;
    int simd = *s == 'X';
    hx_in_mxcsr = 0x1f80;
    memset(hx_in_xmm, 0, sizeof hx_in_xmm);
    if (simd) {
      s++;
      hx_in_mxcsr = (uint32_t)strtoul(s, &s, 16);
      for (int k = 0; k < 32; k++) hx_in_xmm[k] = strtoull(s, &s, 16);
    }
    while (*s == ' ') s++;
    int x87 = *s == 'F';
    if (x87) {
      s++;
      uint16_t fcw = (uint16_t)strtoul(s, &s, 16);
      int nst = (int)strtol(s, &s, 16);
      unsigned char st[8][10];
      for (int k = 0; k < nst && k < 8; k++) {
        uint64_t sig = strtoull(s, &s, 16);
        uint16_t se = (uint16_t)strtoul(s, &s, 16);
        memcpy(st[k], &sig, 8);
        memcpy(st[k] + 8, &se, 2);
      }
      __asm__ volatile("fninit\n fldcw %0" : : "m"(fcw));
      for (int k = (nst < 8 ? nst : 8) - 1; k >= 0; k--) __asm__ volatile("fldt %0" : : "m"(st[k]));
    }
    memcpy(initial, data, DATA_SIZE);

    fault_sig = 0;
    volatile int land = -1;
    uint64_t rip, flags, *regs, *xmm;
    uint32_t mxcsr;
    uint8_t *fx;
    if (sigsetjmp(fault_env, 1) == 0) {
      hx_run();
      land = code[LAND_ID_OFF] == 0xff ? -1 : code[LAND_ID_OFF];
      rip = land < 0 ? 0 : CODE + (land == 0 ? INSN_OFF + (uint64_t)n : LANDINGS[land]);
      flags = hx_out_flags;
      regs = hx_out;
      xmm = hx_out_xmm;
      mxcsr = hx_out_mxcsr;
      fx = hx_out_fx;
    } else {
      __asm__ volatile("ldmxcsr %0" : : "m"(hx_default_mxcsr));
      rip = fault_rip;
      flags = fault_flags;
      regs = fault_regs;
      xmm = fault_xmm;
      mxcsr = fault_mxcsr;
      fx = fault_fx;
      __asm__ volatile("fninit");
    }
    printf("R %x %x %lx %lx", land & 0xff, fault_sig, rip, flags);
    for (int i = 0; i < 16; i++) printf(" %lx", regs[i]);
    int changes = 0;
    for (int off = 0; off < DATA_SIZE; off += 8) changes += memcmp(data + off, initial + off, 8) != 0;
    printf(" %x", changes);
    for (int off = 0; off < DATA_SIZE; off += 8) {
      if (memcmp(data + off, initial + off, 8) != 0) {
        uint64_t v;
        memcpy(&v, data + off, 8);
        printf(" %x %lx", off, v);
      }
    }
    if (simd) {
      printf(" X %x", mxcsr);
      for (int k = 0; k < 32; k++) printf(" %lx", xmm[k]);
    }
    if (x87) {
      uint16_t fcw, fsw, sexp;
      uint64_t sig;
      memcpy(&fcw, fx, 2);
      memcpy(&fsw, fx + 2, 2);
      printf(" F %x %x %x", fcw, fsw, fx[4]);
      for (int k = 0; k < 8; k++) {
        memcpy(&sig, fx + 32 + 16 * k, 8);
        memcpy(&sexp, fx + 40 + 16 * k, 2);
        printf(" %lx %x", sig, sexp);
      }
    }
    putchar('\n');
  }
  fflush(stdout);
  return 0;
}
