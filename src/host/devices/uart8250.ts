// An 8250-family UART as a 16550A with FIFOs (National Semiconductor PC16550D datasheet, register
// map and interrupt priorities; Linux drivers/tty/serial/8250 is the guest that probes it). Eight
// registers at the base port (COM1 0x3F8, IRQ 4):
//   +0 RBR (read) / THR (write), or DLL when LCR.DLAB
//   +1 IER, or DLM when LCR.DLAB
//   +2 IIR (read) / FCR (write)
//   +3 LCR   +4 MCR   +5 LSR   +6 MSR   +7 SCR
// Transmission is instantaneous: a byte written to THR goes to the output sink at once, so THR and
// the transmitter are always empty (LSR THRE|TEMT) and the THR-empty interrupt is raised again by
// every write. Received bytes come from `receive()` (terminal or socket) into a 16-byte FIFO (one
// holding register with FIFOs off); overflow sets LSR.OE. Loopback (MCR.LOOP) sends THR to the
// receiver and wires MCR outputs to MSR inputs, as Linux's autoconfig test expects.
// The interrupt line is the IIR's "pending" state gated by MCR.OUT2 (the PC wiring); whoever owns
// the interrupt controller listens through `onIrq`.

import type { PortDevice, PortSize } from './bus.js';

export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;

/** Register offsets from the base port. */
export const UART_REG = {
  RBR_THR_DLL: 0,
  IER_DLM: 1,
  IIR_FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7,
} as const;

export const UART_IER = { RDI: 0x01, THRI: 0x02, RLSI: 0x04, MSI: 0x08 } as const;
/** IIR interrupt identification (bits 3:0) and the FIFO-enabled bits (7:6). */
export const UART_IIR = {
  NO_INT: 0x01,
  MSI: 0x00,
  THRI: 0x02,
  RDI: 0x04,
  RLSI: 0x06,
  TIMEOUT: 0x0c,
  FIFO_ENABLED: 0xc0,
} as const;
export const UART_FCR = { ENABLE: 0x01, CLEAR_RCVR: 0x02, CLEAR_XMIT: 0x04 } as const;
export const UART_LCR = { DLAB: 0x80 } as const;
export const UART_MCR = { DTR: 0x01, RTS: 0x02, OUT1: 0x04, OUT2: 0x08, LOOP: 0x10 } as const;
export const UART_LSR = {
  DR: 0x01,
  OE: 0x02,
  PE: 0x04,
  FE: 0x08,
  BI: 0x10,
  THRE: 0x20,
  TEMT: 0x40,
  FIFO_ERROR: 0x80,
} as const;
export const UART_MSR = {
  DCTS: 0x01,
  DDSR: 0x02,
  TERI: 0x04,
  DDCD: 0x08,
  CTS: 0x10,
  DSR: 0x20,
  RI: 0x40,
  DCD: 0x80,
} as const;

const FIFO_SIZE = 16;
/** FCR[7:6] -> receive trigger level. */
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** Modem inputs of a connected line (carrier, data set ready, clear to send). */
const LINE_CONNECTED = UART_MSR.DCD | UART_MSR.DSR | UART_MSR.CTS;

export interface Uart8250Options {
  readonly base?: number;
  /** Where transmitted bytes go (the VM's serial sink). */
  readonly output: (bytes: Uint8Array) => void;
  /** Called when the interrupt line changes level. */
  readonly onIrq?: (level: boolean) => void;
}

export class Uart8250 implements PortDevice {
  readonly name = 'uart8250';
  readonly base: number;
  private readonly output: (bytes: Uint8Array) => void;
  private readonly onIrq: (level: boolean) => void;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private lsrErrors = 0;
  private msrDelta = 0;
  private scr = 0;
  private dll = 0x0c; // 9600 baud after reset, as a BIOS would leave it
  private dlm = 0;
  private fifoEnabled = false;
  private triggerLevel = 1;
  /** The receive FIFO as a ring. */
  private readonly rx = new Uint8Array(FIFO_SIZE);
  private rxHead = 0;
  private rxCount = 0;
  /** THR-empty interrupt latched (cleared by reading IIR while it is reported, or writing THR). */
  private thriPending = false;
  private irqLevel = false;
  private readonly one = new Uint8Array(1);
  /** Counters for the inspector and benchmarks. */
  bytesOut = 0;
  bytesIn = 0;

  constructor(o: Uart8250Options) {
    this.base = o.base ?? COM1_PORT;
    this.output = o.output;
    this.onIrq = o.onIrq ?? (() => undefined);
  }

  /** The interrupt line (IIR pending and MCR.OUT2). */
  get irq(): boolean {
    return this.irqLevel;
  }

  /** Bytes from the outside world (terminal, socket) into the receiver. Returns bytes taken. */
  receive(bytes: Uint8Array): number {
    let taken = 0;
    for (const b of bytes) {
      if (!this.pushRx(b)) break;
      taken++;
    }
    this.updateIrq();
    return taken;
  }

  /** Bytes the receiver still takes before it overruns. */
  get receiveRoom(): number {
    return (this.fifoEnabled ? FIFO_SIZE : 1) - this.rxCount;
  }

  private pushRx(b: number): boolean {
    if (this.rxCount >= (this.fifoEnabled ? FIFO_SIZE : 1)) {
      this.lsrErrors |= UART_LSR.OE;
      return false;
    }
    this.rx[(this.rxHead + this.rxCount) % FIFO_SIZE] = b;
    this.rxCount++;
    this.bytesIn++;
    return true;
  }

  private popRx(): number {
    if (this.rxCount === 0) return 0;
    const b = this.rx[this.rxHead]!;
    this.rxHead = (this.rxHead + 1) % FIFO_SIZE;
    this.rxCount--;
    return b;
  }

  private get dlab(): boolean {
    return (this.lcr & UART_LCR.DLAB) !== 0;
  }

  private get loopback(): boolean {
    return (this.mcr & UART_MCR.LOOP) !== 0;
  }

  private lsr(): number {
    let v = UART_LSR.THRE | UART_LSR.TEMT | this.lsrErrors;
    if (this.rxCount > 0) v |= UART_LSR.DR;
    return v;
  }

  private modemStatus(): number {
    if (!this.loopback) return LINE_CONNECTED;
    const m = this.mcr;
    return (
      (m & UART_MCR.RTS ? UART_MSR.CTS : 0) |
      (m & UART_MCR.DTR ? UART_MSR.DSR : 0) |
      (m & UART_MCR.OUT1 ? UART_MSR.RI : 0) |
      (m & UART_MCR.OUT2 ? UART_MSR.DCD : 0)
    );
  }

  /** The highest-priority pending interrupt, as IIR[3:0] reports it. */
  private pendingInterrupt(): number {
    if (this.ier & UART_IER.RLSI && this.lsrErrors !== 0) return UART_IIR.RLSI;
    if (this.ier & UART_IER.RDI && this.rxCount > 0) {
      // Below the trigger level the FIFO reports a character timeout; time is not modelled, so
      // the timeout has always elapsed by the time the guest looks.
      return this.fifoEnabled && this.rxCount < this.triggerLevel ? UART_IIR.TIMEOUT : UART_IIR.RDI;
    }
    if (this.ier & UART_IER.THRI && this.thriPending) return UART_IIR.THRI;
    if (this.ier & UART_IER.MSI && this.msrDelta !== 0) return UART_IIR.MSI;
    return UART_IIR.NO_INT;
  }

  private updateIrq(): void {
    const level = this.pendingInterrupt() !== UART_IIR.NO_INT && (this.mcr & UART_MCR.OUT2) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.onIrq(level);
    }
  }

  private setModemControl(value: number): void {
    const before = this.modemStatus();
    this.mcr = value & 0x1f;
    const after = this.modemStatus();
    const changed = before ^ after;
    // Delta bits: CTS, DSR and DCD on any change; TERI when RI goes from on to off.
    this.msrDelta |=
      (changed & UART_MSR.CTS ? UART_MSR.DCTS : 0) |
      (changed & UART_MSR.DSR ? UART_MSR.DDSR : 0) |
      (changed & UART_MSR.DCD ? UART_MSR.DDCD : 0) |
      (before & UART_MSR.RI && !(after & UART_MSR.RI) ? UART_MSR.TERI : 0);
  }

  private transmit(b: number): void {
    if (this.loopback) {
      this.pushRx(b);
    } else {
      this.one[0] = b;
      this.output(this.one);
      this.bytesOut++;
    }
    // Sent at once: THR is empty again, which raises the THR-empty interrupt.
    this.thriPending = true;
  }

  /** OUTS to THR (the console's string output): one sink call for the whole run of bytes. */
  transmitMany(bytes: Uint8Array): void {
    if (this.dlab || this.loopback) {
      for (const b of bytes) this.transmit(b);
    } else if (bytes.length > 0) {
      this.output(bytes);
      this.bytesOut += bytes.length;
      this.thriPending = true;
    }
    this.updateIrq();
  }

  /** Whether an OUTS of bytes to `port` can go through `transmitMany`. */
  isThr(port: number): boolean {
    return port === this.base + UART_REG.RBR_THR_DLL && !this.dlab;
  }

  /** A wider access reaches consecutive registers, low byte first, as on the ISA bus. */
  in(port: number, size: PortSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const reg = port - this.base + i;
      v |= (reg <= UART_REG.SCR ? this.readRegister(reg) : 0xff) << (8 * i);
    }
    this.updateIrq();
    return v >>> 0;
  }

  out(port: number, size: PortSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const reg = port - this.base + i;
      if (reg <= UART_REG.SCR) this.writeRegister(reg, (value >>> (8 * i)) & 0xff);
    }
    this.updateIrq();
  }

  private readRegister(reg: number): number {
    switch (reg) {
      case UART_REG.RBR_THR_DLL:
        if (this.dlab) return this.dll;
        return this.popRx();
      case UART_REG.IER_DLM:
        return this.dlab ? this.dlm : this.ier;
      case UART_REG.IIR_FCR: {
        const id = this.pendingInterrupt();
        // Reading IIR while it reports THR empty acknowledges that interrupt.
        if (id === UART_IIR.THRI) this.thriPending = false;
        return id | (this.fifoEnabled ? UART_IIR.FIFO_ENABLED : 0);
      }
      case UART_REG.LCR:
        return this.lcr;
      case UART_REG.MCR:
        return this.mcr;
      case UART_REG.LSR: {
        const v = this.lsr();
        this.lsrErrors = 0; // reading LSR clears OE, PE, FE and BI
        return v;
      }
      case UART_REG.MSR: {
        const v = this.modemStatus() | this.msrDelta;
        this.msrDelta = 0;
        return v;
      }
      case UART_REG.SCR:
        return this.scr;
      default:
        return 0xff;
    }
  }

  private writeRegister(reg: number, value: number): void {
    switch (reg) {
      case UART_REG.RBR_THR_DLL:
        if (this.dlab) this.dll = value;
        else this.transmit(value);
        return;
      case UART_REG.IER_DLM:
        if (this.dlab) {
          this.dlm = value;
          return;
        }
        // Enabling the THR-empty interrupt while THR is empty raises it at once.
        if (value & UART_IER.THRI && !(this.ier & UART_IER.THRI)) this.thriPending = true;
        this.ier = value & 0x0f;
        return;
      case UART_REG.IIR_FCR: {
        const enable = (value & UART_FCR.ENABLE) !== 0;
        // Changing the FIFO enable resets both FIFOs.
        if (enable !== this.fifoEnabled || value & UART_FCR.CLEAR_RCVR) {
          this.rxHead = 0;
          this.rxCount = 0;
        }
        this.fifoEnabled = enable;
        this.triggerLevel = TRIGGER_LEVELS[(value >> 6) & 3]!;
        return;
      }
      case UART_REG.LCR:
        this.lcr = value;
        return;
      case UART_REG.MCR:
        this.setModemControl(value);
        return;
      case UART_REG.LSR:
      case UART_REG.MSR:
        return; // read-only (factory test writes are ignored)
      case UART_REG.SCR:
        this.scr = value;
        return;
    }
  }

  /** The divisor latch (DLM:DLL), for the inspector: baud = 115200 / divisor. */
  get divisor(): number {
    return (this.dlm << 8) | this.dll;
  }
}
