package ferrymq

import java.net.URLClassLoader
import java.nio.file.Files
import java.nio.file.Path
import java.sql.Connection
import java.sql.Driver
import java.util.Properties

/**
 * A JDBC driver that opens ferrymq's encrypted files (SQLCipher 4): io.github.willena's
 * sqlite-jdbc (SQLite3 Multiple Ciphers) with its SQLCipher scheme at version 4's
 * settings. It has xerial's class names (org.sqlite.JDBC), and xerial's sqlite-jdbc is
 * on the test class path, so the pom copies its jar to target/ (system property
 * ferrymq.sqlcipherJdbc) and it is loaded here in a class loader of its own.
 */
object SqlCipherJdbc {
    private val loader: ClassLoader by lazy {
        val jar = System.getProperty("ferrymq.sqlcipherJdbc")
        check(!jar.isNullOrBlank() && Files.isRegularFile(Path.of(jar))) {
            "ferrymq.sqlcipherJdbc=$jar is not the SQLCipher-capable driver's jar (the pom copies it to target/)"
        }
        // The platform loader's parent sees java.sql but not xerial's org.sqlite classes.
        URLClassLoader(arrayOf(Path.of(jar).toUri().toURL()), ClassLoader.getPlatformClassLoader())
    }

    private val driver: Driver by lazy {
        loader.loadClass("org.sqlite.JDBC").getDeclaredConstructor().newInstance() as Driver
    }

    /** The driver's settings for a SQLCipher 4 file opened with [passphrase]. */
    private fun properties(passphrase: String): Properties {
        val builder = loader.loadClass("org.sqlite.mc.SQLiteMCSqlCipherConfig").getMethod("getV4Defaults").invoke(null)
        builder.javaClass.getMethod("withKey", String::class.java).invoke(builder, passphrase)
        val config = builder.javaClass.getMethod("build").invoke(builder)
        return config.javaClass.getMethod("toProperties").invoke(config) as Properties
    }

    /** A connection to the encrypted file [db], keyed with [passphrase] (autoCommit on). */
    fun connect(db: Path, passphrase: String): Connection =
        driver.connect("jdbc:sqlite:$db", properties(passphrase)) ?: error("the driver refused jdbc:sqlite:$db")
}
