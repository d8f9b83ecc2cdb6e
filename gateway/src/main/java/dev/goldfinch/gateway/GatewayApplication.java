package dev.goldfinch.gateway;

import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.service.MeshChannels;
import io.grpc.ManagedChannel;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
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

    @Bean
    WorldTokenizer tokenizer(GatewayProperties p) {
        return p.vocab() == null || p.vocab().isBlank()
                ? WorldTokenizer.world()
                : WorldTokenizer.load(java.nio.file.Path.of(p.vocab()));
    }

    @Bean
    ApiKeys apiKeys(GatewayProperties p) {
        if (p.apiKeysFile() == null) {
            LOG.warn("no API keys file (goldfinch.gateway.api-keys-file): the gateway serves anyone, as one tenant");
            return ApiKeys.open();
        }
        ApiKeys keys = ApiKeys.load(java.nio.file.Path.of(p.apiKeysFile()));
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

    @Bean(destroyMethod = "shutdownNow")
    ManagedChannel prefillChannel(GatewayProperties p, ChannelOpener channels) {
        return channels.open(p.prefill());
    }

    /** Only the playground's mesh view reads it (the cache store's bytes); the gateway never reads entries. */
    @Bean
    @ConditionalOnProperty("goldfinch.gateway.cache-store")
    MeshStatusController.CacheStoreChannel cacheStoreChannel(GatewayProperties p, ChannelOpener channels) {
        return new MeshStatusController.CacheStoreChannel(channels.open(p.cacheStore()));
    }

    @Bean
    ModelCatalog modelCatalog(ManagedChannel prefillChannel) {
        return new ModelCatalog(prefillChannel);
    }

    @Bean(destroyMethod = "close")
    DecodeRouter decodeRouter(GatewayProperties p, ChannelOpener channels) {
        return new DecodeRouter(p.decodeTargets(), p.healthInterval(), p.affinitySlack(), channels);
    }

    /** Request orchestration blocks on prefill: virtual threads, never a transport or servlet thread pool. */
    @Bean(destroyMethod = "shutdown")
    ExecutorService gatewayExecutor() {
        return Executors.newVirtualThreadPerTaskExecutor();
    }

    @Bean
    GenerationPipeline generationPipeline(
            WorldTokenizer tokenizer,
            ManagedChannel prefillChannel,
            DecodeRouter router,
            ExecutorService gatewayExecutor,
            GatewayProperties p,
            MeterRegistry meters) {
        return new GenerationPipeline(
                tokenizer,
                prefillChannel,
                router,
                gatewayExecutor,
                p.maxInflight(),
                p.maxInflightPerTenant(),
                p.requestTimeout(),
                meters);
    }

    @Bean
    GenerationGrpcService generationGrpcService(
            PromptBuilder prompts, ModelCatalog models, GenerationPipeline pipeline, JsonGrammars grammars) {
        return new GenerationGrpcService(prompts, models, pipeline, grammars);
    }
}
