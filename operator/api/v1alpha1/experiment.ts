// Experiment: one training definition (an Arena manifest on a resource class) and its runs.
import { isDeepStrictEqual } from 'node:util';
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, Int, ListMap, Name, Num, Obj, Str, StringEnum, Timestamp, patterns } from '../schema.ts';
import { withRules } from '../rules.ts';
import { ageColumn, defineKind, type Resource } from '../kind.ts';
import { Description, Message, ObservedGeneration, Reason, stepChoiceRules } from './common.ts';
import { Manifest } from './manifest.ts';

export const EXPERIMENT_ACTIONS = ['Draft', 'Train', 'Stop'] as const;
export type ExperimentAction = (typeof EXPERIMENT_ACTIONS)[number];

export const EXPERIMENT_PHASES = ['Draft', 'Pending', 'Running', 'Stopping', 'Stopped', 'Succeeded', 'Failed'] as const;
export type ExperimentPhase = (typeof EXPERIMENT_PHASES)[number];

export const ExperimentConditions = {
  /** The spec and manifest passed validation and the resource class exists. */
  Valid: 'Valid',
  /** The scheduler admitted the whole gang on the resource class; False says why the run still waits. */
  Admitted: 'Admitted',
  /** Every worker of the gang is running. */
  WorkersReady: 'WorkersReady',
  /** The current run is moving towards completion; False once it ended or while it cannot advance. */
  Progressing: 'Progressing',
} as const;

export const RESUME_CHECKPOINTS = ['best', 'final', 'step'] as const;

const ResumeFrom = withRules(
  Obj('Start from a checkpoint of another experiment in this namespace instead of from scratch (Arena\'s Resume).', {
    experiment: Name('The experiment, in this namespace, whose checkpoint to start from.'),
    checkpoint: Type.Optional(
      StringEnum('Which checkpoint: best (highest evaluation score), final (most steps) or step (the one written at spec.resumeFrom.step).', RESUME_CHECKPOINTS, {
        default: 'best',
      }),
    ),
    step: Type.Optional(Int('The step of the checkpoint to use; only with checkpoint step.', { minimum: 0 })),
  }),
  stepChoiceRules('step'),
);

const Run = withRules(
  Int('The training run this experiment is on. Raise it to train a finished experiment again; re-applying the same value starts nothing new.', {
    minimum: 1,
    default: 1,
  }),
  [
    {
      cel: 'self >= oldSelf',
      message: 'run can only be raised: set a higher value to start a new run',
      check: (run, old) => run >= old,
    },
  ],
);

export const ExperimentSpec = withRules(
  Obj('The desired state of an experiment.', {
    action: Type.Optional(
      StringEnum(
        'What to do. Draft keeps the experiment idle. Train queues a run on the resource class and trains it (from Draft, Stopped, Succeeded or Failed). Stop halts a Pending or Running run, letting workers write a final checkpoint first.',
        EXPERIMENT_ACTIONS,
        { default: 'Draft' },
      ),
    ),
    run: Type.Optional(Run),
    resourceClass: Type.Optional(Name('The ResourceClass to train on; required to Train.')),
    priority: Type.Optional(
      Int(
        'Queue order and preemption: higher runs first, equal priorities in order of creation (0 when unset). A Pending gang of higher priority that does not fit may preempt running ones of lower priority, which resume from their checkpoint. Set this or spec.priorityClassName, not both.',
        { minimum: -1000, maximum: 1000 },
      ),
    ),
    priorityClassName: Type.Optional(
      Name('A scheduling.k8s.io PriorityClass whose value is the priority (clamped to -1000..1000); instead of spec.priority.'),
    ),
    maxRetries: Type.Optional(
      Int('How many times a failed attempt (crashed worker, lost node) is retried from the last checkpoint before the run fails.', { minimum: 0, maximum: 20, default: 3 }),
    ),
    stopGracePeriodSeconds: Type.Optional(
      Int('How long workers get after Stop to write a final checkpoint and exit before they are killed.', { minimum: 1, maximum: 3600, default: 120 }),
    ),
    partialGangTimeoutSeconds: Type.Optional(
      Int('How long an admitted gang may run with some workers missing before the attempt is abandoned and retried.', { minimum: 30, maximum: 3600, default: 300 }),
    ),
    resumeFrom: Type.Optional(ResumeFrom),
    description: Type.Optional(Description('what this experiment tries')),
    manifest: Manifest,
  }),
  [
    {
      cel: "!has(self.action) || self.action != 'Train' || has(self.resourceClass)",
      message: 'resourceClass is required to Train: name the ResourceClass to run on',
      fieldPath: '.resourceClass',
      reason: 'FieldValueRequired',
      check: (s) => s.action !== 'Train' || s.resourceClass !== undefined,
    },
    {
      cel: '!has(self.priority) || !has(self.priorityClassName)',
      message: 'set priority or priorityClassName, not both: the PriorityClass names the priority',
      fieldPath: '.priorityClassName',
      check: (s) => s.priority === undefined || s.priorityClassName === undefined,
    },
    {
      cel: '!has(oldSelf.resumeFrom) || (has(self.resumeFrom) && self.resumeFrom == oldSelf.resumeFrom)',
      message: 'resumeFrom cannot change once set: create a new experiment to start from another checkpoint',
      fieldPath: '.resumeFrom',
      check: (s, old) => old.resumeFrom === undefined || isDeepStrictEqual(s.resumeFrom, old.resumeFrom),
    },
  ],
);
export type ExperimentSpec = Static<typeof ExperimentSpec>;

const Step = (what: string) => Int(what, { minimum: 0 });
const Score = (what: string) => Num(what);
const Location = () => Str('Where the checkpoint is stored, relative to the training cluster\'s checkpoint storage.', { maxLength: 1024 });

/** Days of per-day usage an experiment's status keeps; usage reports spread anything older over the run. */
export const USAGE_DAYS_KEPT = 120;
const UsageDay = Obj('Usage on one UTC day.', {
  date: Str('The UTC day, YYYY-MM-DD.', { minLength: 10, maxLength: 10, pattern: patterns.utcDate }),
  nodeSeconds: Int('Worker-node seconds on that day.', { minimum: 0 }),
  gpuSeconds: Int('GPU seconds on that day.', { minimum: 0 }),
  credits: Num('Credits used on that day.', { minimum: 0 }),
});
export type ExperimentUsageDay = Static<typeof UsageDay>;

const Checkpoint = Obj('A checkpoint written by a run.', {
  run: Int('The run that wrote it.', { minimum: 1 }),
  step: Step('The training step it was written at.'),
  trainingScore: Type.Optional(Score('The training score at that step; absent until metrics exist.')),
  evaluationScore: Type.Optional(Score('The evaluation score (fitness) at that step; absent until metrics exist.')),
  sizeBytes: Int('Size on storage.', { minimum: 0 }),
  location: Location(),
  createdAt: Timestamp('When it was written.'),
});

export const ExperimentStatus = Obj('The observed state of the experiment, as the operator last saw it.', {
  observedGeneration: Type.Optional(ObservedGeneration()),
  phase: Type.Optional(StringEnum('Where the current run is: Draft, Pending, Running, Stopping, Stopped, Succeeded or Failed.', EXPERIMENT_PHASES)),
  reason: Type.Optional(Reason('the phase (while Pending: why it waits)')),
  message: Type.Optional(Message('the phase')),
  conditions: Type.Optional(Conditions('Current state: Valid, Admitted, WorkersReady and Progressing.')),
  run: Type.Optional(Int('The run (spec.run) this status describes.', { minimum: 1 })),
  attempt: Type.Optional(Int('The attempt of this run, from 1; each retry after a failure, and each resume after a preemption or a credits stop, adds one.', { minimum: 1 })),
  failedAttempts: Type.Optional(
    Int('Failed attempts of this run so far; spec.maxRetries counts these. A preemption or a credits stop is not a failure.', { minimum: 0 }),
  ),
  estimatedStartTime: Type.Optional(
    Timestamp('While Pending: when it is estimated to start, from the running experiments\' speed towards their max_steps and the queue ahead (the Admitted condition\'s message says how). Absent when no estimate can be made.'),
  ),
  queuePosition: Type.Optional(Int('Place in the resource class queue while Pending; 1 runs next.', { minimum: 1 })),
  admittedAt: Type.Optional(Timestamp('When the scheduler admitted the current attempt.')),
  startedAt: Type.Optional(Timestamp('When every worker of the current run first ran.')),
  finishedAt: Type.Optional(Timestamp('When the current run reached Stopped, Succeeded or Failed.')),
  attemptStartedAt: Type.Optional(Timestamp('When every worker of the current attempt first ran; its usage is counted from then.')),
  retryAt: Type.Optional(Timestamp('After a failed attempt: when the next one may start (retry backoff).')),
  stopRequestedAt: Type.Optional(Timestamp('When Stop was acted on; the stop grace period counts from then.')),
  runTokenKey: Type.Optional(
    Type.String({
      maxLength: 64,
      description: 'Which operator signing key made the current attempt\'s run tokens (a public id, not the key). When the key is replaced, the operator issues new tokens to the running workers and records the new id.',
    }),
  ),
  workers: Type.Optional(
    Obj('Worker pods of the current attempt.', {
      desired: Int('Workers the gang needs (the class\'s nodes).', { minimum: 0 }),
      scheduled: Int('Workers bound to a node.', { minimum: 0 }),
      running: Int('Workers running.', { minimum: 0 }),
    }),
  ),
  progress: Type.Optional(
    Obj('Training progress of the current run, as the workers last reported it.', {
      step: Step('Steps trained.'),
      maxSteps: Type.Optional(Int('Steps the run trains for (manifest training.max_steps).', { minimum: 1 })),
      percent: Type.Optional(Int('step as a whole percentage of maxSteps.', { minimum: 0, maximum: 100 })),
      trainingScore: Type.Optional(Score('Latest training score.')),
      evaluationScore: Type.Optional(Score('Latest evaluation score (fitness).')),
      stepsPerSecond: Type.Optional(Num('Recent training speed.', { minimum: 0 })),
      etaSeconds: Type.Optional(Int('Estimated seconds until maxSteps.', { minimum: 0 })),
      updatedAt: Type.Optional(Timestamp('When the workers last reported progress.')),
    }),
  ),
  checkpoints: Type.Optional(
    ListMap('Checkpoints of every run, oldest first (at most 100 are listed; the best and latest are always kept).', Checkpoint, { keys: ['run', 'step'], maxItems: 100 }),
  ),
  latestCheckpoint: Type.Optional(
    Obj('The checkpoint with the most steps of the current run; training resumes from it after a failure.', {
      step: Step('Its step.'),
      location: Location(),
    }),
  ),
  bestCheckpoint: Type.Optional(
    Obj('The checkpoint with the highest evaluation score.', {
      step: Step('Its step.'),
      evaluationScore: Score('Its evaluation score.'),
    }),
  ),
  resumedFrom: Type.Optional(
    Obj('The checkpoint spec.resumeFrom resolved to, frozen when the first run started.', {
      experiment: Name('The source experiment.'),
      step: Step('The checkpoint step.'),
      location: Location(),
    }),
  ),
  lastFailure: Type.Optional(
    Obj('The most recent failed attempt, kept after a successful retry.', {
      reason: Reason('the failure (e.g. CudaOutOfMemory, NcclTimeout, NodeLost)'),
      message: Message('the failure'),
      hint: Type.Optional(Str('One line on how to fix it.', { maxLength: 1024 })),
      at: Timestamp('When the attempt failed.'),
      attempt: Int('The attempt that failed.', { minimum: 1 }),
    }),
  ),
  lastInterruption: Type.Optional(
    Obj('The last time the operator, not the user, stopped this run (CreditsExhausted or Preempted), and when it resumed. Kept after the resume.', {
      reason: Reason('the interruption (CreditsExhausted or Preempted)'),
      message: Message('the interruption'),
      at: Timestamp('When the stop was requested.'),
      run: Int('The run that was stopped.', { minimum: 1 }),
      checkpointStep: Type.Optional(Step('The step of the final checkpoint it stopped with, which the resume starts from.')),
      resumedAt: Type.Optional(Timestamp('When it was queued again (after a top-up), or admitted again after a preemption, with no one re-applying it.')),
      preemptedBy: Type.Optional(Str('Preempted: the namespace/name of the higher-priority experiment it made room for.', { maxLength: 317 })),
      stepAtStop: Type.Optional(Step('The last step the workers reported before they exited.')),
      lostSteps: Type.Optional(Step('Steps trained that the resume does not keep: stepAtStop minus checkpointStep.')),
    }),
  ),
  usage: Type.Optional(
    Obj('Resources used by all runs so far.', {
      nodeSeconds: Int('Worker-node seconds.', { minimum: 0 }),
      gpuSeconds: Int('GPU seconds.', { minimum: 0 }),
      credits: Num('Credits used: node-hours times the class\'s creditsPerNodeHour.', { minimum: 0 }),
      days: Type.Optional(
        ListMap(
          `The same, per UTC day, for attempts that have ended; oldest first. Only the newest ${USAGE_DAYS_KEPT} days are listed (the totals above keep everything).`,
          UsageDay,
          { keys: ['date'], maxItems: USAGE_DAYS_KEPT },
        ),
      ),
    }),
  ),
});
export type ExperimentStatus = Static<typeof ExperimentStatus>;

export type Experiment = Resource<ExperimentSpec, ExperimentStatus>;

export const experimentKind = defineKind({
  kind: 'Experiment',
  plural: 'experiments',
  scope: 'Namespaced',
  shortNames: ['exp', 'arenaexp'],
  description:
    'Experiment is an Arena training definition (a training manifest on a resource class) and the state of its runs: set spec.action to Train or Stop, and read progress and checkpoints from status.',
  spec: ExperimentSpec,
  status: ExperimentStatus,
  rules: [
    {
      cel: '!has(self.spec.resumeFrom) || !has(self.metadata.name) || self.spec.resumeFrom.experiment != self.metadata.name',
      message: 'an experiment cannot resume from itself: raise spec.run to train it again',
      fieldPath: '.spec.resumeFrom.experiment',
      check: (e) => e.spec.resumeFrom === undefined || e.spec.resumeFrom.experiment !== e.metadata?.name,
    },
  ],
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Where the current run is.' },
    { name: 'Class', type: 'string', jsonPath: '.spec.resourceClass', description: 'The ResourceClass it trains on.' },
    { name: 'Progress', type: 'integer', jsonPath: '.status.progress.percent', description: 'Percentage of max steps trained.' },
    { name: 'Step', type: 'integer', jsonPath: '.status.progress.step', description: 'Steps trained.' },
    { name: 'Checkpoint', type: 'integer', jsonPath: '.status.latestCheckpoint.step', description: 'Step of the latest checkpoint.' },
    { name: 'Reason', type: 'string', jsonPath: '.status.reason', description: 'Why the run is in its phase.', priority: 1 },
    ageColumn,
  ],
});

/** Phases in which a run has ended and a new one may start. */
export const TERMINAL_PHASES: readonly ExperimentPhase[] = ['Stopped', 'Succeeded', 'Failed'];

export type ExperimentCheckpoint = Static<typeof Checkpoint>;
