/**
 * Fair share between teams by dominant resource (DRF, Ghodsi et al. 2011; the rule Kueue's fair sharing and KAI's
 * scheduler apply between queues), as pure functions. Not wired into admission yet: GangScheduler still orders by
 * priority and arrival alone.
 *
 * - A team's dominant share is the largest, over GPUs, CPU and memory, of what it uses divided by the pool's total,
 *   divided by the team's weight (default 1).
 * - Order. Within one priority, the waiting gangs are taken by progressive filling: the team with the lowest
 *   dominant share goes next, with its earliest gang, whose request is then counted as that team's; ties go to the
 *   earlier gang, then the key. Higher priority still goes first.
 * - Borrowing. A team's nominal quota is its guaranteed share of the pool; what it uses beyond it is borrowed, and
 *   is what `reclaimable` offers to a team that needs its own quota back.
 */
import type { Resources } from './capacity.ts';

export interface TeamGang {
  key: string;
  team: string;
  priority: number;
  arrivalMs: number;
  /** The whole gang's request (workers × per-worker). */
  request: Resources;
}

export interface FairShareInput {
  gangs: readonly TeamGang[];
  /** What each team's running work uses now. */
  usage: ReadonlyMap<string, Resources>;
  /** The pool's total allocatable. */
  total: Resources;
  /** Relative weights; a team not listed weighs 1. */
  weights?: ReadonlyMap<string, number>;
}

const zero = (): Resources => ({ gpus: 0, cpuMilli: 0, memoryBytes: 0 });

/** The largest fraction of the pool a team uses of any resource, over its weight. */
export function dominantShare(used: Resources, total: Resources, weight = 1): number {
  let share = 0;
  if (total.gpus > 0) share = Math.max(share, used.gpus / total.gpus);
  if (total.cpuMilli > 0) share = Math.max(share, used.cpuMilli / total.cpuMilli);
  if (total.memoryBytes > 0) share = Math.max(share, used.memoryBytes / total.memoryBytes);
  return share / (weight > 0 ? weight : 1);
}

/** The waiting gangs in fair-share order: priority first, then progressive filling by dominant share. */
export function fairShareOrder({ gangs, usage, total, weights }: FairShareInput): string[] {
  const byPriority = new Map<number, TeamGang[]>();
  for (const g of gangs) {
    const list = byPriority.get(g.priority) ?? [];
    list.push(g);
    byPriority.set(g.priority, list);
  }
  const used = new Map<string, Resources>();
  for (const [team, u] of usage) used.set(team, { ...u });
  const order: string[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => b - a)) {
    // Per team, its gangs by arrival; the filling takes the head of the team with the lowest share.
    const queues = new Map<string, TeamGang[]>();
    for (const g of byPriority.get(priority)!) {
      const q = queues.get(g.team) ?? [];
      q.push(g);
      queues.set(g.team, q);
    }
    for (const q of queues.values()) q.sort(arrival);
    for (;;) {
      let best: { team: string; share: number; head: TeamGang } | undefined;
      for (const [team, q] of queues) {
        const head = q[0];
        if (!head) continue;
        const share = dominantShare(used.get(team) ?? zero(), total, weights?.get(team));
        if (best === undefined || share < best.share || (share === best.share && arrival(head, best.head) < 0)) best = { team, share, head };
      }
      if (!best) break;
      queues.get(best.team)!.shift();
      order.push(best.head.key);
      const u = used.get(best.team) ?? zero();
      u.gpus += best.head.request.gpus;
      u.cpuMilli += best.head.request.cpuMilli;
      u.memoryBytes += best.head.request.memoryBytes;
      used.set(best.team, u);
    }
  }
  return order;
}

/** What a team uses beyond its nominal quota, per resource (never negative). */
export function borrowed(used: Resources, nominal: Resources): Resources {
  return {
    gpus: Math.max(0, used.gpus - nominal.gpus),
    cpuMilli: Math.max(0, used.cpuMilli - nominal.cpuMilli),
    memoryBytes: Math.max(0, used.memoryBytes - nominal.memoryBytes),
  };
}

/**
 * Whether a request of `team` is within its nominal quota once added to what it uses: such a request may reclaim
 * capacity other teams borrowed (by preempting their borrowing work), whatever their priority.
 */
export function withinQuota(used: Resources, request: Resources, nominal: Resources): boolean {
  return used.gpus + request.gpus <= nominal.gpus && used.cpuMilli + request.cpuMilli <= nominal.cpuMilli && used.memoryBytes + request.memoryBytes <= nominal.memoryBytes;
}

function arrival(a: TeamGang, b: TeamGang): number {
  return a.arrivalMs - b.arrivalMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}
