// Every scenario of `make chaos`, in the order they run.
import type { ChaosScenario } from './scenario.ts';
import { operatorKills } from './operator-kills.ts';
import { leaderFailover } from './leader-failover.ts';
import { controlPlaneRestarts } from './control-plane-restarts.ts';
import { floods } from './floods.ts';
import { watchCut } from './watch-cut.ts';
import { reportPartition } from './report-partition.ts';
import { volumeFull } from './volume-full.ts';

export const scenarios: ChaosScenario[] = [operatorKills, leaderFailover, controlPlaneRestarts, floods, watchCut, reportPartition, volumeFull];
