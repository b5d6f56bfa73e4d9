// TEST FIXTURE. oidc-provider's storage adapter for the stand-in: plain in-memory maps, entries dropped at expiry.
// oidc-provider's own quick-start adapter is an LRU of 1000 entries, which a load test outgrows (a login stores
// about seven: interaction, session, grant, code, access token and indexes), losing codes in flight.

const SWEEP_MS = 30_000;

// One store per provider, shared by the per-model adapters oidc-provider creates.
export function memoryStore() {
  const entries = new Map(); // key -> { value, expiresAt }
  const grants = new Map(); // grantId -> Set of keys issued under it
  const sessionUids = new Map(); // session uid -> session id
  const userCodes = new Map(); // user code -> id

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, e] of entries) {
      if (e.expiresAt <= now) entries.delete(key);
    }
    for (const [grantId, keys] of grants) {
      for (const key of keys) if (!entries.has(key)) keys.delete(key);
      if (keys.size === 0) grants.delete(grantId);
    }
    for (const [uid, id] of sessionUids) if (!entries.has(`Session:${id}`)) sessionUids.delete(uid);
    for (const [code, id] of userCodes) if (!entries.has(`DeviceCode:${id}`)) userCodes.delete(code);
  }, SWEEP_MS);
  sweep.unref();

  function get(key) {
    const e = entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  class Adapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
      entries.set(key, { value: payload, expiresAt });
      if (payload.grantId) {
        if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
        grants.get(payload.grantId).add(key);
      }
      if (this.model === 'Session' && payload.uid) sessionUids.set(payload.uid, id);
      if (payload.userCode) userCodes.set(payload.userCode, id);
    }

    async find(id) {
      return get(this.key(id));
    }

    async findByUid(uid) {
      const id = sessionUids.get(uid);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = userCodes.get(userCode);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const value = get(this.key(id));
      if (value) value.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) {
      const key = this.key(id);
      const value = get(key);
      entries.delete(key);
      if (value?.uid && sessionUids.get(value.uid) === id) sessionUids.delete(value.uid);
      if (value?.userCode) userCodes.delete(value.userCode);
      if (value?.grantId) grants.get(value.grantId)?.delete(key);
    }

    async revokeByGrantId(grantId) {
      for (const key of grants.get(grantId) ?? []) entries.delete(key);
      grants.delete(grantId);
    }
  }

  return Adapter;
}
