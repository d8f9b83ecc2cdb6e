package dev.goldfinch.mesh;

import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;

/** The mesh with the embedded store (no {@code --redis}). */
class EmbeddedMeshEndToEndTest extends MeshEndToEndTest {
    @Override
    String redisUrl() {
        return null;
    }

    @Override
    int corruptCheckpoints() {
        InMemoryCacheBackend memory = (InMemoryCacheBackend)
                mesh.bean("cache-store", PrefixCache.class).backend();
        int n = 0;
        for (String key : memory.keys()) {
            if (key.endsWith("}:s") && memory.corrupt(key)) {
                n++;
            }
        }
        return n;
    }
}
