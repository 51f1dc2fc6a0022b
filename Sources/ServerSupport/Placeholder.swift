import NIOSSL
import ServiceLifecycle
import Metrics
