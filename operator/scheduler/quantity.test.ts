import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QuantityError, formatBytes, formatCpu, parseCount, parseCpuMilli, parseMemoryBytes } from './quantity.ts';

describe('parseCpuMilli', () => {
  const cases: [string | number, number][] = [
    ['500m', 500],
    ['2', 2000],
    ['1.5', 1500],
    ['0.1', 100],
    ['.5', 500],
    ['2.', 2000],
    ['+3', 3000],
    ['0', 0],
    ['-0', 0],
    ['7910m', 7910],
    ['0.0001', 1], // rounds up, like MilliValue()
    ['1n', 1],
    ['1500u', 2],
    ['1k', 1_000_000],
    ['1e3', 1_000_000],
    ['1E3', 1_000_000],
    ['1e-3', 1],
    ['2.5e-1', 250],
    [8, 8000],
    [0.25, 250],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${want}m`, () => assert.equal(parseCpuMilli(input), want));
  }
});

describe('parseMemoryBytes', () => {
  const cases: [string | number, number][] = [
    ['64Gi', 64 * 1024 ** 3],
    ['512Mi', 512 * 1024 ** 2],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['0.5Ki', 512],
    ['1G', 1e9],
    ['1e9', 1e9],
    ['1P', 1e15],
    ['4Pi', 2 ** 52],
    ['123456', 123456],
    ['1.5', 2], // whole bytes, rounded up
    ['32761816Ki', 32761816 * 1024],
    ['100M', 1e8],
    ['1k', 1000],
    ['1Ki', 1024],
    [1073741824, 1073741824],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${want} bytes`, () => assert.equal(parseMemoryBytes(input), want));
  }
});

describe('parseCount', () => {
  it('reads GPU counts', () => {
    assert.equal(parseCount('8', 'gpus'), 8);
    assert.equal(parseCount(110, 'pods'), 110);
  });
});

describe('malformed quantities are rejected with the field and the input', () => {
  const cases: [unknown, RegExp][] = [
    ['', /cpu: "" is not a Kubernetes quantity/],
    [' 12', /is not a Kubernetes quantity/],
    ['0x10', /is not a Kubernetes quantity/],
    ['12Q', /is not a Kubernetes quantity \(e\.g\. 500m/],
    ['1.5e3m', /is not a Kubernetes quantity/],
    ['1ki', /is not a Kubernetes quantity/],
    ['Infinity', /is not a Kubernetes quantity/],
    ['1..2', /is not a Kubernetes quantity/],
    ['.', /is not a Kubernetes quantity/],
    ['e3', /is not a Kubernetes quantity/],
    ['-1', /is negative/],
    ['-500m', /is negative/],
    [-1, /is negative/],
    [Number.NaN, /not a finite number/],
    [Number.POSITIVE_INFINITY, /not a finite number/],
    ['1e400', /too large/],
    ['9Ei', /too large/],
    ['1E', /too large/],
    ['8Pi', /too large/],
    [{}, /expected a quantity string or number/],
  ];
  for (const [input, message] of cases) {
    it(`${typeof input === 'string' ? JSON.stringify(input) : String(input)}`, () => {
      assert.throws(() => parseCpuMilli(input as string), (err: unknown) => err instanceof QuantityError && message.test(err.message));
    });
  }
  it('names the field it was given', () => {
    assert.throws(() => parseMemoryBytes('lots', 'worker memory'), /^QuantityError: worker memory: "lots"/);
  });
});

describe('formatting for messages', () => {
  const cpu: [number, string][] = [
    [8000, '8'],
    [7500, '7.5'],
    [250, '250m'],
    [0, '0'],
  ];
  for (const [milli, want] of cpu) it(`cpu ${milli}m → ${want}`, () => assert.equal(formatCpu(milli), want));
  const bytes: [number, string][] = [
    [64 * 1024 ** 3, '64Gi'],
    [1.5 * 1024 ** 3, '1.5Gi'],
    [512 * 1024 ** 2, '512Mi'],
    [2 * 1024 ** 4, '2Ti'],
    [1000, '1000'],
    [0, '0'],
  ];
  for (const [n, want] of bytes) it(`${n} bytes → ${want}`, () => assert.equal(formatBytes(n), want));
});
