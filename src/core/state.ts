/**
 * The deployment state machine.
 *
 *   scheduled ──fire──▶ running ──▶ succeeded | failed
 *       │                  │
 *       ├─cancel─▶ canceled ◀─cancel (only providers that can recall a rollout)
 *       ├─dependency did not succeed─▶ skipped
 *       ├─not started by expires_at─▶ missed
 *       └─a deploy freeze covers its instant─▶ held ──release / reschedule / freeze gone─▶ scheduled
 *                                               ├─cancel─▶ canceled
 *                                               └─still held at expires_at─▶ missed
 */
export const STATES = ['scheduled', 'held', 'running', 'succeeded', 'failed', 'canceled', 'skipped', 'missed'] as const;
export type DeploymentState = (typeof STATES)[number];

export const FINAL_STATES: readonly DeploymentState[] = ['succeeded', 'failed', 'canceled', 'skipped', 'missed'];

const TRANSITIONS: Record<DeploymentState, readonly DeploymentState[]> = {
  scheduled: ['running', 'held', 'canceled', 'skipped', 'missed'],
  held: ['scheduled', 'canceled', 'skipped', 'missed'],
  running: ['succeeded', 'failed', 'canceled'],
  succeeded: [],
  failed: [],
  canceled: [],
  skipped: [],
  missed: [],
};

export function isFinal(state: DeploymentState): boolean {
  return FINAL_STATES.includes(state);
}

export function canTransition(from: DeploymentState, to: DeploymentState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * What a dependent deployment does when it is due, given its dependency's state.
 * `run`: the dependency succeeded. `wait`: it has not finished yet. `skip`: it never will succeed.
 */
export function dependencyVerdict(dependencyState: DeploymentState | null): 'run' | 'wait' | 'skip' {
  if (dependencyState === null || dependencyState === 'succeeded') return 'run';
  if (dependencyState === 'scheduled' || dependencyState === 'held' || dependencyState === 'running') return 'wait';
  return 'skip';
}
