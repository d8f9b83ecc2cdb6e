package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.service.Channels;
import io.grpc.ManagedChannel;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/** The gateway: public gRPC {@code Generation} and the OpenAI-compatible HTTP API. */
@SpringBootApplication
@EnableConfigurationProperties(GatewayProperties.class)
public class GatewayApplication {
    public static void main(String[] args) {
        SpringApplication app = new SpringApplication(GatewayApplication.class);
        app.setAdditionalProfiles("gateway");
        app.run(args);
    }

    @Bean
    WorldTokenizer tokenizer(GatewayProperties p) {
        if (p.vocab() == null || p.vocab().isBlank()) {
            throw new GoldFinchException.InvalidInput(
                    "goldfinch.gateway.vocab (the World vocabulary file) is required");
        }
        return WorldTokenizer.load(java.nio.file.Path.of(p.vocab()));
    }

    @Bean
    PromptBuilder promptBuilder(WorldTokenizer tokenizer) {
        return new PromptBuilder(tokenizer);
    }

    /** Netty channels; a test supplies its own opener before the context starts. */
    @Bean
    @ConditionalOnMissingBean
    ChannelOpener channelOpener() {
        return Channels::open;
    }

    @Bean(destroyMethod = "shutdownNow")
    ManagedChannel prefillChannel(GatewayProperties p, ChannelOpener channels) {
        return channels.open(p.prefill());
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
                tokenizer, prefillChannel, router, gatewayExecutor, p.maxInflight(), p.requestTimeout(), meters);
    }

    @Bean
    GenerationGrpcService generationGrpcService(
            PromptBuilder prompts, ModelCatalog models, GenerationPipeline pipeline) {
        return new GenerationGrpcService(prompts, models, pipeline);
    }
}
