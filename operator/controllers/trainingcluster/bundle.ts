// Setup-bundle currency: which version the platform calls current, where that answer came from, and whether the
// installed bundle matches it. Pure, so the TrainingCluster and ResourceClass reconcilers and the status API all
// reach the same verdict from the same object.
//
// Precedence of the current version, freshest first:
//   1. what the platform's heartbeat reply said in this operator process (only the TrainingCluster reconciler sees it),
//   2. what the platform last said as recorded in status.platform.currentBundleVersion (survives operator restarts,
//      link restarts and replies that carry no usable version),
//   3. spec.currentBundleVersion, the admin's hand-set fallback for clusters without the link, or whose platform
//      has not named a version yet.
// Platform answers count only while spec.platform is set: removing the link hands the decision back to the admin.
import { patterns } from '../../api/schema.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';

export type BundleState = 'Current' | 'UpdateRecommended' | 'Unknown';
export const BUNDLE_VERSION_SOURCES = ['Platform', 'Spec'] as const;
export type BundleVersionSource = (typeof BUNDLE_VERSION_SOURCES)[number];

export interface BundleView {
  installedVersion?: string;
  currentVersion?: string;
  state: BundleState;
}

export interface ResolvedBundle extends BundleView {
  /** Where currentVersion came from; absent while it is unknown. */
  source?: BundleVersionSource;
}

/** What the platform link learnt from heartbeat replies in this process. */
export interface PlatformBundleReport {
  /** The last valid version a reply named; kept when later replies carry none. */
  version?: string;
  /** What was wrong with the latest accepted reply, completing "the platform's last heartbeat reply …". */
  problem?: string;
}

const SEMVER = new RegExp(patterns.semver.regex);

export function isSemver(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 64 && SEMVER.test(v);
}

type ClusterView = Pick<TrainingCluster, 'spec' | 'status'>;

export function resolveBundle(tc: ClusterView, live?: PlatformBundleReport): ResolvedBundle {
  const installedVersion = tc.spec.setupBundle?.version;
  let currentVersion: string | undefined;
  let source: BundleVersionSource | undefined;
  if (tc.spec.platform) {
    // The status is a cache anyone with status rights can edit: a stored value is used only if it is still valid.
    const stored = tc.status?.platform?.currentBundleVersion;
    const fromPlatform = isSemver(live?.version) ? live.version : isSemver(stored) ? stored : undefined;
    if (fromPlatform !== undefined) [currentVersion, source] = [fromPlatform, 'Platform'];
  }
  if (currentVersion === undefined && tc.spec.currentBundleVersion !== undefined) [currentVersion, source] = [tc.spec.currentBundleVersion, 'Spec'];
  const state: BundleState = currentVersion === undefined ? 'Unknown' : installedVersion === currentVersion ? 'Current' : 'UpdateRecommended';
  return {
    ...(installedVersion !== undefined ? { installedVersion } : {}),
    ...(currentVersion !== undefined ? { currentVersion, source } : {}),
    state,
  };
}

/** The bundle as TrainingCluster and ResourceClass status carry it (the source is in status.platform). */
export function bundleOf(tc: ClusterView, live?: PlatformBundleReport): BundleView {
  const { source: _, ...view } = resolveBundle(tc, live);
  return view;
}

/** One sentence on where the current version came from, for condition messages. */
export function sourceSentence(b: ResolvedBundle): string {
  if (b.source === 'Platform') return `The platform reported ${b.currentVersion} as current.`;
  if (b.source === 'Spec') return `The current version ${b.currentVersion} is from spec.currentBundleVersion.`;
  return '';
}
