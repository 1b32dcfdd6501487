// Gymnasium CartPole-v1 episodes played through an agent's Arena endpoint by the platform's own Python client
// (runtime/serve/play_cartpole.py), or by a seeded random policy: the runtime's test helper, shared with the demo.
export { playCartpole, type Episodes } from '../../runtime/serve/testing.ts';
