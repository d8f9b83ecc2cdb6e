package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.proto.v1.ModelInfo;
import dev.goldfinch.service.MeshChannels;
import dev.goldfinch.service.tracing.TraceContext;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.tracing.Tracer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Primary;
import org.springframework.core.Ordered;
import org.springframework.grpc.server.GlobalServerInterceptor;
import tools.jackson.databind.json.JsonMapper;

/** The gateway: public gRPC {@code Generation} and the OpenAI-compatible HTTP API. */
@SpringBootApplication
@EnableConfigurationProperties(GatewayProperties.class)
public class GatewayApplication {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayApplication.class);

    public static void main(String[] args) {
        SpringApplication app = new SpringApplication(GatewayApplication.class);
        app.setAdditionalProfiles("gateway");
        app.run(args);
    }

    /** How long the gateway waits at start for the prefill service to describe the model (it may still be loading). */
    static final Duration MODEL_WAIT = Duration.ofMinutes(5);

    /**
     * The vocabulary, checked against the served model at start: a vocabulary with ids the model has no row
     * for would make every prompt a wrong one, so the gateway refuses to start with it.
     */
    @Bean
    WorldTokenizer tokenizer(GatewayProperties p, ModelCatalog models) {
        ModelInfo model = models.awaitInfo(MODEL_WAIT);
        WorldTokenizer tokenizer = vocabulary(p.vocab(), model.getVocabSize());
        if (tokenizer.vocabSize() > model.getVocabSize()) {
            throw new GoldFinchException.BadModel("goldfinch.gateway.vocab=" + p.vocab() + " has token ids up to "
                    + (tokenizer.vocabSize() - 1) + " but the served model '" + model.getId() + "' has only "
                    + model.getVocabSize() + " tokens: give the model's own vocabulary"
                    + (model.getVocabSize() == WorldTokenizer.BYTE_VOCABULARY_SIZE ? " (bytes)" : ""));
        }
        LOG.info(
                "vocabulary: {} ids ({}) for model '{}' of {} tokens",
                tokenizer.vocabSize(),
                p.vocab() == null ? "chosen from the model" : p.vocab(),
                model.getId(),
                model.getVocabSize());
        return tokenizer;
    }

    /**
     * {@code goldfinch.gateway.vocab}: {@code world}, {@code bytes} or a World-format file; absent, the model's
     * vocabulary size chooses (256: the bytes, as rwkv.cpp's tiny models read; else the bundled World one).
     */
    static WorldTokenizer vocabulary(String vocab, int modelVocabSize) {
        String v = vocab == null ? "" : vocab.strip();
        return switch (v) {
            case "" ->
                modelVocabSize == WorldTokenizer.BYTE_VOCABULARY_SIZE ? WorldTokenizer.bytes() : WorldTokenizer.world();
            case "world" -> WorldTokenizer.world();
            case "bytes" -> WorldTokenizer.bytes();
            default -> WorldTokenizer.load(Path.of(v));
        };
    }

    @Bean
    ApiKeys apiKeys(GatewayProperties p) {
        if (p.apiKeysFile() == null) {
            LOG.warn("no API keys file (goldfinch.gateway.api-keys-file): the gateway serves anyone, as one tenant");
            return ApiKeys.open();
        }
        ApiKeys keys = ApiKeys.load(Path.of(p.apiKeysFile()));
        LOG.info("API keys required: {} keys from {}", keys.size(), p.apiKeysFile());
        return keys;
    }

    /** On every gRPC service of the gateway (health excepted inside): no call reaches a service unauthenticated. */
    @Bean
    @GlobalServerInterceptor
    ApiKeyGrpcInterceptor apiKeyGrpcInterceptor(ApiKeys keys) {
        return new ApiKeyGrpcInterceptor(keys);
    }

    @Bean
    FilterRegistrationBean<ApiKeyHttpFilter> apiKeyHttpFilter(ApiKeys keys, JsonMapper json) {
        FilterRegistrationBean<ApiKeyHttpFilter> registration =
                new FilterRegistrationBean<>(new ApiKeyHttpFilter(keys, json));
        registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
        return registration;
    }

    /** Right after authentication: an unauthenticated body is never read, an oversized one never parsed. */
    @Bean
    FilterRegistrationBean<RequestBodyLimitFilter> requestBodyLimitFilter(GatewayProperties p, JsonMapper json) {
        FilterRegistrationBean<RequestBodyLimitFilter> registration = new FilterRegistrationBean<>(
                new RequestBodyLimitFilter(p.maxRequestBody().toBytes(), json));
        registration.setOrder(Ordered.HIGHEST_PRECEDENCE + 1);
        return registration;
    }

    /** Structured outputs' compiled schemas, checked here before a request reaches prefill. */
    @Bean
    JsonGrammars jsonGrammars(WorldTokenizer tokenizer) {
        return new JsonGrammars(tokenizer, 32);
    }

    @Bean
    PromptBuilder promptBuilder(WorldTokenizer tokenizer) {
        return new PromptBuilder(tokenizer);
    }

    /** Netty channels with the mesh identity; a test supplies its own opener before the context starts. */
    @Bean
    @ConditionalOnMissingBean
    ChannelOpener channelOpener(MeshChannels mesh) {
        return mesh::open;
    }

    /** The prefill replicas ({@code goldfinch.gateway.prefill}: one target or several, comma-separated). */
    @Bean(destroyMethod = "close")
    ReplicaRouter prefillRouter(GatewayProperties p, ChannelOpener channels) {
        return new ReplicaRouter("prefill", p.prefillTargets(), p.healthInterval(), 0, channels);
    }

    /** Only the playground's mesh view reads it (the cache store's bytes); the gateway never reads entries. */
    @Bean
    @ConditionalOnProperty("goldfinch.gateway.cache-store")
    MeshStatusController.CacheStoreChannel cacheStoreChannel(GatewayProperties p, ChannelOpener channels) {
        return new MeshStatusController.CacheStoreChannel(channels.open(p.cacheStore()));
    }

    @Bean
    ModelCatalog modelCatalog(@Qualifier("prefillRouter") ReplicaRouter prefillRouter, GatewayProperties p) {
        return new ModelCatalog(prefillRouter, p.servedModelNames());
    }

    /** The decode replicas: the router everything else (the mesh view, tests) means by a plain ReplicaRouter. */
    @Bean(destroyMethod = "close")
    @Primary
    ReplicaRouter decodeRouter(GatewayProperties p, ChannelOpener channels) {
        return new ReplicaRouter("decode", p.decodeTargets(), p.healthInterval(), p.affinitySlack(), channels);
    }

    /** Request orchestration blocks on prefill: virtual threads, never a transport or servlet thread pool. */
    @Bean(destroyMethod = "shutdown")
    ExecutorService gatewayExecutor() {
        return TraceContext.propagating(Executors.newVirtualThreadPerTaskExecutor());
    }

    @Bean
    GenerationPipeline generationPipeline(
            WorldTokenizer tokenizer,
            @Qualifier("prefillRouter") ReplicaRouter prefillRouter,
            ReplicaRouter router,
            ExecutorService gatewayExecutor,
            GatewayProperties p,
            MeterRegistry meters,
            ObjectProvider<ObservationRegistry> observations,
            ObjectProvider<Tracer> tracer) {
        return new GenerationPipeline(
                tokenizer,
                prefillRouter,
                router,
                gatewayExecutor,
                p.maxInflight(),
                p.maxInflightPerTenant(),
                p.requestTimeout(),
                meters,
                observations.getIfAvailable(() -> ObservationRegistry.NOOP),
                tracer.getIfAvailable(() -> Tracer.NOOP));
    }

    @Bean
    GenerationGrpcService generationGrpcService(
            PromptBuilder prompts, ModelCatalog models, GenerationPipeline pipeline, JsonGrammars grammars) {
        return new GenerationGrpcService(prompts, models, pipeline, grammars);
    }
}
