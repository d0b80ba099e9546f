package example;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Orders per customer (the record key): a state store backed by a changelog, exactly-once.
 *
 * <p>Every Kafka setting comes from the properties file the sidecar writes (args[0]); topic names come
 * from ORDERS_TOPIC and COUNTS_TOPIC. State changes are printed so the sidecar can see RUNNING.
 */
public final class OrderCounts {
  private OrderCounts() {}

  public static void main(String[] args) throws IOException, InterruptedException {
    Properties props = new Properties();
    try (InputStream in = new FileInputStream(args[0])) {
      props.load(in);
    }
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(System.getenv("ORDERS_TOPIC"), Consumed.with(Serdes.String(), Serdes.String()))
        .groupByKey()
        .count()
        .toStream()
        .mapValues(count -> "{\"count\":" + count + "}")
        .to(System.getenv("COUNTS_TOPIC"), Produced.with(Serdes.String(), Serdes.String()));
    props.putIfAbsent(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      System.out.println("state " + before + " -> " + now);
      if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
        done.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      // Leave the group at once, so an operator's reset right after the stop finds it empty.
      streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP));
      done.countDown();
    }));
    streams.start();
    done.await();
  }
}
