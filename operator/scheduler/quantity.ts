// Kubernetes resource quantities ("500m", "1.5", "64Gi", "1e9") as exact integers: milli-CPU and bytes.
//
// Not @kubernetes/client-node's quantityToScalar: 2.0.1 does not export it from the package root, and it is wrong
// for inputs we meet in practice: "1.5Gi" and "0.5G" throw (it feeds the mantissa to BigInt), " 12" and "0x10"
// parse (Number() leniency), "" is 0, "1.5e3m" is 1.5, and it returns a float or a bigint depending on the suffix.
// The scheduler compares sums of these numbers, so it needs exact integers; this parser does the arithmetic in
// BigInt and rounds up the way resource.Quantity's MilliValue()/Value() do, so a request is never under-counted.

export type QuantityInput = string | number;

export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

// The resource.Quantity grammar: a signed decimal number, then a binary-SI suffix, a decimal-SI suffix or a decimal
// exponent. "1E" is one exa; "1E3" is one thousand (the regex backtracks from the suffix to the exponent).
const QUANTITY = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([KMGTPE])i|([numkMGTPE])|[eE]([+-]?[0-9]+))?$/;

const BINARY_POWER: Record<string, bigint> = { K: 10n, M: 20n, G: 30n, T: 40n, P: 50n, E: 60n };
const DECIMAL_EXPONENT: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const EXAMPLES = 'e.g. 500m, 2, 1.5, 64Gi, 512Mi, 1G or 1e9';
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Parses a CPU quantity into whole milli-CPUs, rounding up ("0.0001" is 1m, as the kube-scheduler counts it). */
export function parseCpuMilli(quantity: QuantityInput, field = 'cpu'): number {
  return parseScaled(quantity, 3, field);
}

/** Parses a memory (or other byte) quantity into whole bytes, rounding up. */
export function parseMemoryBytes(quantity: QuantityInput, field = 'memory'): number {
  return parseScaled(quantity, 0, field);
}

/** Parses a countable quantity (GPUs, pods) into a whole number, rounding up. */
export function parseCount(quantity: QuantityInput, field: string): number {
  return parseScaled(quantity, 0, field);
}

/** value × 10^scale, rounded up to an integer, exactly. */
function parseScaled(quantity: QuantityInput, scale: number, field: string): number {
  const text = quantityText(quantity, field);
  const m = QUANTITY.exec(text);
  if (m === null) {
    throw new QuantityError(`${field}: "${text}" is not a Kubernetes quantity (${EXAMPLES})`);
  }
  const [, sign, number = '', binary, decimal, exponent] = m;
  if (sign === '-' && /[1-9]/.test(number)) {
    throw new QuantityError(`${field}: "${text}" is negative; a resource amount must be 0 or more`);
  }
  const [whole = '', fraction = ''] = number.split('.');
  const digits = (whole + fraction).replace(/^0+/, '');
  if (digits === '') return 0;

  let exp10 = scale - fraction.length;
  let exp2 = 0n;
  if (binary !== undefined) exp2 = BINARY_POWER[binary] ?? 0n;
  else if (decimal !== undefined) exp10 += DECIMAL_EXPONENT[decimal] ?? 0;
  else if (exponent !== undefined) exp10 += Number(exponent);

  // Reject before building a huge BigInt: the value has about digits+exp10+0.302*exp2 decimal digits.
  const magnitude = digits.length + exp10 + Math.ceil(Number(exp2) * Math.LOG10E * Math.LN2);
  if (magnitude > 17) throw tooLarge(field, text);
  // A positive value below 0.1 rounds up to 1, however small: skip the 10^-huge division.
  if (magnitude < -1) return 1;

  const mantissa = BigInt(digits) << exp2;
  let result: bigint;
  if (exp10 >= 0) {
    result = mantissa * 10n ** BigInt(exp10);
  } else {
    const divisor = 10n ** BigInt(-exp10);
    result = (mantissa + divisor - 1n) / divisor;
  }
  if (result > MAX_SAFE) throw tooLarge(field, text);
  return Number(result);
}

function quantityText(quantity: QuantityInput, field: string): string {
  if (typeof quantity === 'number') {
    if (!Number.isFinite(quantity)) throw new QuantityError(`${field}: ${quantity} is not a finite number`);
    if (quantity < 0) throw new QuantityError(`${field}: ${quantity} is negative; a resource amount must be 0 or more`);
    return String(quantity);
  }
  if (typeof quantity !== 'string') {
    throw new QuantityError(`${field}: expected a quantity string or number (${EXAMPLES}), got ${typeof quantity}`);
  }
  return quantity;
}

function tooLarge(field: string, text: string): QuantityError {
  return new QuantityError(`${field}: "${text}" is too large to count (more than ${Number.MAX_SAFE_INTEGER} units)`);
}

/** "8", "7.5" or "250m": milli-CPUs the way a person reads them in a message. */
export function formatCpu(milli: number): string {
  if (milli % 1000 === 0) return String(milli / 1000);
  if (milli % 100 === 0) return (milli / 1000).toFixed(1);
  return `${milli}m`;
}

const BINARY_UNITS = ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki'] as const;

/** "64Gi", "1.5Gi", "512Mi" or "100": bytes in the largest binary unit that reads well (at most two decimals). */
export function formatBytes(bytes: number): string {
  for (let i = 0; i < BINARY_UNITS.length; i++) {
    const unit = 1024 ** (BINARY_UNITS.length - i);
    if (bytes >= unit) {
      return `${Math.round((bytes / unit) * 100) / 100}${BINARY_UNITS[i]}`;
    }
  }
  return String(bytes);
}
