// metav1.Condition, kept the way apimachinery's meta.SetStatusCondition keeps it: one entry per type,
// lastTransitionTime moves only when the status flips, observedGeneration says which spec the condition
// describes. Plus the JSON equality used to skip status writes that would change nothing.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  /** RFC 3339, second precision, as metav1.Time serializes. */
  lastTransitionTime: string;
  /** CamelCase machine-readable token. */
  reason: string;
  /** Human-readable detail. */
  message: string;
}

export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

// The patterns and limits metav1.Condition declares; the API server rejects a status that breaks them.
const apiReason = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const apiType = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
const camelCase = /^[A-Z][A-Za-z0-9]*$/;
const statuses: readonly string[] = ['True', 'False', 'Unknown'];

function check(c: ConditionUpdate): void {
  if (!apiType.test(c.type) || c.type.length > 316) throw new Error(`invalid condition type ${JSON.stringify(c.type)}`);
  if (!statuses.includes(c.status)) throw new Error(`condition ${c.type}: status must be True, False or Unknown`);
  if (!apiReason.test(c.reason) || c.reason.length > 1024) {
    throw new Error(`condition ${c.type}: invalid reason ${JSON.stringify(c.reason)}`);
  }
  // Stricter than the API: our reasons are CamelCase constants, and a test run should say so when one is not.
  // In production the API's own rule above is the only one enforced.
  if (process.env.NODE_ENV !== 'production' && !camelCase.test(c.reason)) {
    throw new Error(`condition ${c.type}: reason ${JSON.stringify(c.reason)} is not CamelCase`);
  }
  if (c.message.length > 32768) throw new Error(`condition ${c.type}: message longer than 32768 characters`);
}

/** metav1.Time's wire format: RFC 3339 in UTC without fractional seconds. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * Returns a new list with `c` set: added when its type is new, otherwise updated in place, keeping
 * lastTransitionTime unless the status changed. Never mutates its input.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  c: ConditionUpdate,
  generation: number,
  now: Date = new Date(),
): Condition[] {
  check(c);
  const list = conditions ?? [];
  const i = list.findIndex((x) => x.type === c.type);
  const previous = list[i];
  const unchanged = previous?.status === c.status && previous.lastTransitionTime;
  const next: Condition = {
    type: c.type,
    status: c.status,
    observedGeneration: generation,
    lastTransitionTime: unchanged ? previous.lastTransitionTime : rfc3339(now),
    reason: c.reason,
    message: c.message,
  };
  const copy = list.map((x, j) => (j === i ? next : { ...x }));
  return i < 0 ? [...copy, next] : copy;
}

/** Returns a new list without the condition of that type. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((x) => x.type !== type).map((x) => ({ ...x }));
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((x) => x.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

export function isFalse(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'False';
}

/**
 * Equality as the API server would see the two values once serialized: key order does not matter, fields set
 * to undefined count as absent, Dates compare by their JSON text. Array order does matter.
 */
export function statusEqual(a: unknown, b: unknown): boolean {
  if (a instanceof Date) a = a.toJSON();
  if (b instanceof Date) b = b.toJSON();
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => statusEqual(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(rb, k) && statusEqual(ra[k], rb[k]));
}
