package dev.goldfinch.decode;

import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.RemotePrefixCacheStore;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.service.MeshChannels;
import dev.goldfinch.service.ModelProperties;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.ObservationRegistry;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/** A decode replica. */
@SpringBootApplication
@EnableConfigurationProperties({DecodeProperties.class, CacheClientProperties.class, ModelProperties.class})
public class DecodeApplication {
    public static void main(String[] args) {
        SpringApplication app = new SpringApplication(DecodeApplication.class);
        app.setAdditionalProfiles("decode");
        app.run(args);
    }

    /** Shared by every service of the JVM: never closed with one context. */
    @Bean(destroyMethod = "")
    GoldFinchModel model(ModelProperties p) {
        return p.load();
    }

    @Bean(destroyMethod = "close")
    RemotePrefixCacheStore cacheStoreClient(DecodeProperties p, MeshChannels mesh) {
        return new RemotePrefixCacheStore(mesh.open(p.cacheStore()), true, p.storeTimeout());
    }

    /** Entry loads and checkpoint writes: blocking I/O, kept off the scheduler and transport threads. */
    @Bean(destroyMethod = "shutdown")
    ExecutorService decodeIo() {
        return Executors.newVirtualThreadPerTaskExecutor();
    }

    @Bean(destroyMethod = "close")
    DecodeEngine decodeEngine(
            GoldFinchModel model,
            RemotePrefixCacheStore store,
            DecodeProperties p,
            CacheClientProperties c,
            ExecutorService decodeIo,
            MeterRegistry meters,
            ObservationRegistry observations) {
        StateCodec.FloatType type = StateCodec.FloatType.parse(p.stateDtype());
        StateCache cache = new StateCache(store, c.hasher(), model, type, c.signer(meters));
        return new DecodeEngine(
                model,
                cache,
                decodeIo,
                p.maxSequences(),
                p.maxBatch(),
                p.localEntries(),
                p.kvBudgetBytes(),
                meters,
                observations);
    }

    /** The vocabulary structured outputs are masked over: as the gateway's, or the model's own. */
    @Bean
    JsonGrammars jsonGrammars(DecodeProperties p, ModelProperties m, GoldFinchModel model) {
        Path override = p.vocab() == null || p.vocab().isBlank() ? null : Path.of(p.vocab());
        Path modelPath = m.path() == null || m.path().isBlank() ? null : Path.of(m.path());
        WorldTokenizer tokenizer =
                WorldTokenizer.forModel(override, modelPath, model.config().vocabSize());
        return new JsonGrammars(tokenizer, p.schemaCache());
    }

    @Bean
    DecodeGrpcService decodeGrpcService(DecodeEngine engine, ModelProperties props, JsonGrammars grammars) {
        return new DecodeGrpcService(engine, props, grammars);
    }
}
