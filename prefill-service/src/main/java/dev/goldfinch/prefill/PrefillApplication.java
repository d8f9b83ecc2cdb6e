package dev.goldfinch.prefill;

import dev.goldfinch.cache.client.BackgroundWrites;
import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.RemotePrefixCacheStore;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.service.MeshChannels;
import dev.goldfinch.service.ModelProperties;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.ObservationRegistry;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/** The prefill service. */
@SpringBootApplication
@EnableConfigurationProperties({PrefillProperties.class, CacheClientProperties.class, ModelProperties.class})
public class PrefillApplication {
    public static void main(String[] args) {
        SpringApplication app = new SpringApplication(PrefillApplication.class);
        app.setAdditionalProfiles("prefill");
        app.run(args);
    }

    /** Shared by every service of the JVM: never closed with one context. */
    @Bean(destroyMethod = "")
    GoldFinchModel model(ModelProperties p) {
        return p.load();
    }

    @Bean(destroyMethod = "close")
    RemotePrefixCacheStore cacheStoreClient(PrefillProperties p, MeshChannels mesh) {
        return new RemotePrefixCacheStore(mesh.open(p.cacheStore()), true, p.storeTimeout());
    }

    @Bean(destroyMethod = "shutdown")
    ThreadPoolExecutor prefillExecutor(PrefillProperties p) {
        return new ThreadPoolExecutor(
                p.concurrency(),
                p.concurrency(),
                0,
                TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(p.maxQueue()),
                Thread.ofPlatform().name("prefill-", 0).daemon().factory());
    }

    @Bean
    PrefillEngine prefillEngine(
            GoldFinchModel model,
            RemotePrefixCacheStore store,
            PrefillProperties p,
            CacheClientProperties c,
            ThreadPoolExecutor prefillExecutor,
            BackgroundWrites checkpointWrites,
            MeterRegistry meters,
            ObservationRegistry observations) {
        StateCodec.FloatType type = StateCodec.FloatType.parse(p.stateDtype());
        return new PrefillEngine(
                model,
                new StateCache(store, c.hasher(), model, type, c.signer(meters)),
                prefillExecutor,
                checkpointWrites,
                observations);
    }

    @Bean(destroyMethod = "close")
    BackgroundWrites checkpointWrites(PrefillProperties p, MeterRegistry meters) {
        return new BackgroundWrites("prefill", p.writeQueue(), meters);
    }

    @Bean
    InitialStateLibrary initialStates(PrefillProperties p, GoldFinchModel model) {
        return InitialStateLibrary.load(p.initialStates(), p.initialStatesDir(), model);
    }

    @Bean
    PrefillGrpcService prefillGrpcService(
            PrefillEngine engine,
            ModelProperties props,
            MeterRegistry meters,
            ThreadPoolExecutor prefillExecutor,
            InitialStateLibrary initialStates) {
        return new PrefillGrpcService(engine, props, meters, prefillExecutor, initialStates);
    }
}
