// Test-harness helper run with the broker's own jars (java -cp 'libs/*' SecuritySetup.java BOOTSTRAP).
// Reads tab-separated directives on stdin (so passwords never appear on a command line) and applies
// them through Kafka's Admin API, exactly as kafka-configs / kafka-acls would:
//   scram <user> <SCRAM-SHA-256|SCRAM-SHA-512> <password>
//   acl <principal> <TOPIC|GROUP|CLUSTER|TRANSACTIONAL_ID> <LITERAL|PREFIXED> <name> <operation>
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class SecuritySetup {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("request.timeout.ms", "20000");
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        List<AclBinding> acls = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            switch (f[0]) {
                case "scram" -> users.add(new UserScramCredentialUpsertion(
                        f[1], new ScramCredentialInfo(ScramMechanism.fromMechanismName(f[2]), 4096), f[3]));
                case "acl" -> acls.add(new AclBinding(
                        new ResourcePattern(ResourceType.fromString(f[2]), f[4], PatternType.fromString(f[3])),
                        new AccessControlEntry(f[1], "*", AclOperation.fromString(f[5]), AclPermissionType.ALLOW)));
                default -> throw new IllegalArgumentException("unknown directive: " + f[0]);
            }
        }
        try (Admin admin = Admin.create(props)) {
            // One alteration per request: a request may not touch the same user twice.
            for (UserScramCredentialAlteration user : users) {
                admin.alterUserScramCredentials(List.of(user)).all().get();
            }
            if (!acls.isEmpty()) {
                admin.createAcls(acls).all().get();
            }
        }
        System.out.println("security setup applied: " + users.size() + " credentials, " + acls.size() + " ACLs");
    }
}
