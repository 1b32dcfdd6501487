// Deletes that act on the object the caller saw, not on whatever carries its name now.
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { isConflict, isNotFound } from './errors.ts';

/**
 * Deletes `pod` only if the pod of that name is still the one seen (a uid precondition). A decision made from a
 * cache can be late: the pod may have been replaced since by one of the same name (another attempt, or a newer
 * leader's create), which must survive. Resolves false when the pod seen is gone already, either way.
 */
export async function deletePodSeen(core: CoreV1Api, pod: V1Pod, gracePeriodSeconds?: number): Promise<boolean> {
  const { namespace, name, uid } = pod.metadata ?? {};
  if (!namespace || !name || !uid) throw new Error('deletePodSeen needs the pod as read from the API (namespace, name and uid)');
  try {
    // In the body: the API server reads a DELETE's options from its body when there is one, and the query's
    // gracePeriodSeconds is then ignored (the pod's own terminationGracePeriodSeconds applies instead).
    await core.deleteNamespacedPod({ namespace, name, body: { preconditions: { uid }, ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}) } });
    return true;
  } catch (err) {
    // 409: the name now belongs to another pod (its precondition failed); 404: nothing of that name.
    if (isNotFound(err) || isConflict(err)) return false;
    throw err;
  }
}
