import { afterEach, describe, expect, it } from 'vitest';
import { buildProgramFile } from './build.js';

describe('system program builder', () => {
  const saved = process.env.CC;
  afterEach(() => {
    if (saved === undefined) delete process.env.CC;
    else process.env.CC = saved;
  });

  it('says which tool is missing instead of failing obscurely', () => {
    process.env.CC = '/nonexistent/x86_64-gcc';
    expect(() => buildProgramFile('workload')).toThrow(
      /gcc, GNU as and objcopy.*'\/nonexistent\/x86_64-gcc' did not run/s,
    );
  });

  it('reuses the cached build while the sources are unchanged', () => {
    expect(buildProgramFile('workload')).toBe(buildProgramFile('workload'));
    expect(buildProgramFile('workload')).toMatch(/workload-[0-9a-f]{16}\.elf$/);
  });
});
