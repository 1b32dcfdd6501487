// Requests a served classic-RL agent's /get_action must refuse with 400 and a message that names the field, for the
// linear CartPole test policy (testing.ts), which checks its input as the AgileRL model does. Shared by the
// server's unit tests (server.test.ts) and the cluster test of bad input (e2e/bad-input.e2e.test.ts).
import { encodeBase64, encodeNpy, encodeNpyBase64, ndarray } from '../npy/npy.ts';
import { rowsB64 } from './testing.ts';

/** Observations the policy answers 0 (cart right of the pole) and 1 (pole right of the cart). */
export const left = [0.5, 0, 0.1, 0];
export const right = [0.1, 0, 0.5, 0];

export interface BadGetActionRequest {
  name: string;
  body: unknown;
  status?: number;
  /** The whole message, or a pattern for it; it starts with the field at fault. */
  message: string | RegExp;
}

export const badGetActionRequests: BadGetActionRequest[] = [
  { name: 'three features', body: { obs: rowsB64([[1, 2, 3]]), batch_size: 1 }, message: 'obs: expected shape (N, 4), got (N, 3)' },
  { name: 'batch_size that does not match', body: { obs: rowsB64([left, right]), batch_size: 3 }, message: 'obs: expected a leading batch axis of 3 (batch_size), got shape (2, 4)' },
  { name: 'a mask of another batch', body: { obs: rowsB64([left]), batch_size: 1, action_mask: encodeNpyBase64(ndarray('b1', [2, 2])) }, message: /^action_mask: expected a leading batch axis of 1/ },
  { name: 'a 0-d observation', body: { obs: encodeNpyBase64(ndarray('f4', [], [1])) }, message: 'obs: expected a leading batch axis, got a 0-d array' },
  { name: 'batch_size not an integer', body: { obs: rowsB64([left]), batch_size: 1.5 }, message: 'batch_size: expected a non-negative integer, got 1.5' },
  { name: 'no obs', body: { batch_size: 1 }, message: 'obs: required' },
  { name: 'a batch over the limit', body: { obs: encodeNpyBase64(ndarray('u1', [70_000, 0])) }, message: 'batch_size: at most 65536 rows per request, got 70000: split the batch' },
  { name: 'obs a number', body: { obs: 4 }, message: 'obs: expected a base64 .npy string, an object, an array or null, got a number' },
  { name: 'obs an empty object', body: { obs: {} }, message: 'obs: holds no array' },
  { name: 'bad base64', body: { obs: 'QUJD\nRA==' }, message: /^obs: not valid base64: character "\\n"/ },
  { name: 'url-safe base64', body: { obs: rowsB64([left]).replace(/\+|\//g, '-') + '-_' }, message: /^obs: not valid base64/ },
  { name: 'not a .npy', body: { obs: encodeBase64(new TextEncoder().encode('{"obs": [1, 2, 3, 4]}')) }, message: /^obs: not a \.npy file/ },
  { name: 'a bad .npy header', body: { obs: encodeBase64(encodeNpy(ndarray('f4', [1, 4])).map((b, i) => (i === 10 ? 0x21 : b))) }, message: /^obs: header is not a Python dict literal/ },
  {
    name: 'an object array',
    body: { obs: encodeBase64(encodeNpy(ndarray('u1', [1])).map((b, i, all) => (i === all.indexOf(0x7c) + 1 ? 0x4f : b))) },
    message: /^obs: object arrays .*allow_pickle=False/,
  },
  { name: 'a dict observation for a single-agent model', body: { obs: { agent_0: rowsB64([left]) } }, message: 'obs: expected one array, got an object keyed by "agent_0"' },
  // The model's own refusals travel as 400s too: NaN survives the .npy codec to reach it.
  { name: 'a NaN observation', body: { obs: rowsB64([left, [0, Number.NaN, 0, 0]]) }, message: 'obs: row 1 holds a non-finite value' },
  { name: 'a mask that allows nothing in a row', body: { obs: rowsB64([left, right]), action_mask: encodeNpyBase64(ndarray('b1', [2, 2], [1, 0, 0, 0])) }, message: 'action_mask: row 1 allows no action' },
  { name: 'a JSON array body', body: [1, 2], message: 'body: expected a JSON object (Content-Type: application/json)' },
];
