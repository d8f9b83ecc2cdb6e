package dev.goldfinch.decode;

import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.proto.v1.FinishReason;

/** Where a sequence's tokens go (a gRPC stream in the service). Called from one thread at a time. */
public interface TokenSink {
    /** False while the receiver cannot take more (flow control): the sequence sits out batch steps until it can. */
    boolean isReady();

    boolean isCancelled();

    /** A sampled token; {@code finish} is set on the last one (END_OF_TEXT: the token is the end-of-text id). */
    void token(Sampler.Sample sample, int generated, FinishReason finish);

    /** The stream is over (after any end-of-generation checkpoint is written). */
    void complete();

    void fail(Throwable error);
}
