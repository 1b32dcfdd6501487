/**
 * Team quotas on a resource class (ResourceClass spec.teams), as pure functions the admission service applies:
 *
 * - A team is a set of namespaces with a nominal quota of the class's GPUs. Namespaces no team lists form the
 *   team "unassigned", whose quota is 0: it runs only on what the teams leave idle.
 * - Borrowing. A team may use idle GPUs beyond its quota, up to its borrowing limit (unset: no limit). A gang that
 *   would take its team past quota plus limit waits with reason QuotaExceeded (the gate below).
 * - Reclaim. A gang whose team stays within its quota with it may preempt, whatever their priority, running gangs
 *   of other teams of the class that borrow: a team's gang is a victim only while its team is still over its quota
 *   before that gang is taken (Kueue's reclaimWithinCohort), so reclaim never cuts into another team's own quota.
 *   Other teams' gangs that do not borrow are never preempted; within a team, priority preemption applies as before.
 * - Fair share. Within one priority, a class's queue is ordered by dominant-resource fair share between its teams
 *   (fair-share.ts), weighted by spec.teams[].weight.
 */
import type { ResourceClassTeam } from '../api/v1alpha1/resourceclass.ts';
import type { Resources } from './capacity.ts';
import { fairShareOrder, type TeamGang } from './fair-share.ts';

export const UNASSIGNED = 'unassigned';

export interface TeamQuota {
  name: string;
  gpus: number;
  /** GPUs it may borrow beyond its quota; Infinity without a limit. */
  borrowingLimit: number;
  weight: number;
}

/** A class's teams, looked up by namespace. */
export class ClassTeams {
  private readonly byNamespace = new Map<string, TeamQuota>();
  private readonly quotas = new Map<string, TeamQuota>();

  constructor(
    readonly className: string,
    teams: readonly ResourceClassTeam[],
  ) {
    for (const t of teams) {
      const q: TeamQuota = { name: t.name, gpus: t.gpus, borrowingLimit: t.borrowingLimit ?? Infinity, weight: t.weight ?? 1 };
      this.quotas.set(t.name, q);
      // The API refuses a namespace in two teams; should one get through, the first team keeps it.
      for (const ns of t.namespaces) if (!this.byNamespace.has(ns)) this.byNamespace.set(ns, q);
    }
  }

  teamOf(namespace: string): string {
    return this.byNamespace.get(namespace)?.name ?? UNASSIGNED;
  }

  quota(team: string): TeamQuota {
    return this.quotas.get(team) ?? { name: team, gpus: 0, borrowingLimit: Infinity, weight: 1 };
  }

  teams(): IterableIterator<TeamQuota> {
    return this.quotas.values();
  }

  weights(): Map<string, number> {
    return new Map([...this.quotas.values()].map((q) => [q.name, q.weight]));
  }
}

/** The namespace of a gang key ("namespace/name"). */
export function namespaceOf(gangKey: string): string {
  const slash = gangKey.indexOf('/');
  return slash < 0 ? '' : gangKey.slice(0, slash);
}

/** What each team of the class holds now, from what each gang holds and the class each gang is on. */
export function teamUsage(
  teams: ClassTeams,
  gangUsage: ReadonlyMap<string, Readonly<Resources>>,
  classOf: (gangKey: string) => string | undefined,
): Map<string, Resources> {
  const used = new Map<string, Resources>();
  for (const [key, r] of gangUsage) {
    if (classOf(key) !== teams.className) continue;
    const team = teams.teamOf(namespaceOf(key));
    const u = used.get(team) ?? { gpus: 0, cpuMilli: 0, memoryBytes: 0 };
    u.gpus += r.gpus;
    u.cpuMilli += r.cpuMilli;
    u.memoryBytes += r.memoryBytes;
    used.set(team, u);
  }
  return used;
}

/** GPUs a team uses beyond its quota (0 when within). */
export function borrowedGpus(teams: ClassTeams, team: string, used: ReadonlyMap<string, Resources>): number {
  return Math.max(0, (used.get(team)?.gpus ?? 0) - teams.quota(team).gpus);
}

/** Why a gang needing `gpus` may not start for its team, or undefined: quota plus borrowing limit is the ceiling. */
export function quotaRefusal(teams: ClassTeams, team: string, usedGpus: number, gpus: number): string | undefined {
  const q = teams.quota(team);
  if (usedGpus + gpus <= q.gpus + q.borrowingLimit) return undefined;
  const who = team === UNASSIGNED ? 'Namespaces no team of the class lists' : `Team ${team}`;
  const fix =
    team === UNASSIGNED
      ? 'add the namespace to a team in spec.teams'
      : `raise spec.teams[${team}].gpus or .borrowingLimit`;
  return `${who} use${team === UNASSIGNED ? '' : 's'} ${usedGpus} GPU(s) of class ${teams.className} against a quota of ${q.gpus} and a borrowing limit of ${q.borrowingLimit}; this run needs ${gpus} more. It starts when the team's own runs free GPUs (or ${fix}).`;
}

/** Where the team stands, appended to a waiting gang's message. */
export function teamSentence(teams: ClassTeams, team: string, used: ReadonlyMap<string, Resources>): string {
  const mine = used.get(team)?.gpus ?? 0;
  if (team === UNASSIGNED) return `Its namespace is in no team of class ${teams.className}: such runs use ${mine} GPU(s), only what the teams leave idle.`;
  return `Team ${team} uses ${mine} of its ${teams.quota(team).gpus}-GPU quota on class ${teams.className}.`;
}

/** A waiting gang of a class with teams, as the queue order sees it. */
export interface QueuedTeamGang {
  key: string;
  priority: number;
  arrivalMs: number;
  /** The whole gang's request (workers × per-worker). */
  request: Resources;
}

/** Where a gang stands in its class's queue: its tier (0 before 1), then, within its priority, at `orderMs`. */
export interface TeamPlace {
  tier: number;
  orderMs: number;
}

/**
 * The class's queue order under team quotas, as places GangScheduler sorts by (tier, priority, orderMs):
 * - Tier 0 holds the gangs that fit their team's quota on top of what it holds and of its earlier gangs (by
 *   priority, then arrival); tier 1 the gangs that would borrow. Kueue admits workloads within their nominal quota
 *   first too: otherwise a borrower of higher priority would take the GPUs a team is reclaiming, and be reclaimed again.
 * - Within a tier and priority, dominant-resource fair share between teams (fairShareOrder); tier 1 counts tier 0's
 *   gangs as their teams' already. The order is expressed by handing the gangs of each tier and priority their own
 *   arrival times in that order, so other classes still interleave by arrival.
 */
export function teamOrder(teams: ClassTeams, used: ReadonlyMap<string, Resources>, total: Resources, gangs: readonly QueuedTeamGang[]): Map<string, TeamPlace> {
  const teamOfGang = (g: QueuedTeamGang) => teams.teamOf(namespaceOf(g.key));
  const ahead = new Map<string, number>();
  const tierOf = new Map<string, number>();
  for (const g of [...gangs].sort((a, b) => b.priority - a.priority || a.arrivalMs - b.arrivalMs || (a.key < b.key ? -1 : 1))) {
    const team = teamOfGang(g);
    const before = (used.get(team)?.gpus ?? 0) + (ahead.get(team) ?? 0);
    const fits = before + g.request.gpus <= teams.quota(team).gpus;
    if (fits) ahead.set(team, (ahead.get(team) ?? 0) + g.request.gpus);
    tierOf.set(g.key, fits ? 0 : 1);
  }
  const shares = new Map([...used].map(([team, r]) => [team, { ...r }]));
  const places = new Map<string, TeamPlace>();
  for (const tier of [0, 1]) {
    const inTier = gangs.filter((g) => tierOf.get(g.key) === tier);
    if (inTier.length === 0) continue;
    const teamGangs: TeamGang[] = inTier.map((g) => ({ ...g, team: teamOfGang(g) }));
    const order = fairShareOrder({ gangs: teamGangs, usage: shares, total, weights: teams.weights() });
    for (const t of teamGangs) {
      const u = shares.get(t.team) ?? { gpus: 0, cpuMilli: 0, memoryBytes: 0 };
      shares.set(t.team, { gpus: u.gpus + t.request.gpus, cpuMilli: u.cpuMilli + t.request.cpuMilli, memoryBytes: u.memoryBytes + t.request.memoryBytes });
    }
    const byKey = new Map(inTier.map((g) => [g.key, g]));
    const slots = new Map<number, number[]>();
    for (const g of inTier) {
      const list = slots.get(g.priority);
      if (list) list.push(g.arrivalMs);
      else slots.set(g.priority, [g.arrivalMs]);
    }
    for (const list of slots.values()) list.sort((a, b) => a - b);
    const taken = new Map<number, number>();
    for (const key of order) {
      const g = byKey.get(key)!;
      const i = taken.get(g.priority) ?? 0;
      taken.set(g.priority, i + 1);
      places.set(key, { tier, orderMs: slots.get(g.priority)![i]! });
    }
  }
  return places;
}
