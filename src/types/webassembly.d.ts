// The part of the WebAssembly JS API that physical memory uses. TypeScript ships these types only
// in its DOM/WebWorker libs, which would bring in browser globals; @types/node 20 lacks them.
export {};

declare global {
  namespace WebAssembly {
    interface MemoryDescriptor {
      initial: number;
      maximum?: number;
      shared?: boolean;
    }
    interface Memory {
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
    // eslint-disable-next-line no-var -- a global constructor is declared with var
    var Memory: {
      prototype: Memory;
      new (descriptor: MemoryDescriptor): Memory;
    };
  }
}
