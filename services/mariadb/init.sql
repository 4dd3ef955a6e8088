-- Idempotent bootstrap of the inventory360 source database (run by services/svc after start).
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS shop.order_lines (
  order_id            BIGINT      NOT NULL,
  line_no             INT         NOT NULL,
  sku_id              VARCHAR(64) NOT NULL,
  warehouse_selection VARCHAR(64) NOT NULL,
  quantity            INT         NOT NULL,
  status              VARCHAR(16) NOT NULL,
  updated_at          TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (order_id, line_no)
) ENGINE=InnoDB;

-- application user
CREATE USER IF NOT EXISTS 'shop'@'127.0.0.1' IDENTIFIED BY 'shop';
CREATE USER IF NOT EXISTS 'shop'@'localhost' IDENTIFIED BY 'shop';
GRANT ALL PRIVILEGES ON shop.* TO 'shop'@'127.0.0.1';
GRANT ALL PRIVILEGES ON shop.* TO 'shop'@'localhost';

-- CDC user for Debezium (binlog reader + snapshot)
CREATE USER IF NOT EXISTS 'cdc'@'127.0.0.1' IDENTIFIED BY 'cdc';
CREATE USER IF NOT EXISTS 'cdc'@'localhost' IDENTIFIED BY 'cdc';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT,
      BINLOG MONITOR, REPLICATION SLAVE ADMIN ON *.* TO 'cdc'@'127.0.0.1';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT,
      BINLOG MONITOR, REPLICATION SLAVE ADMIN ON *.* TO 'cdc'@'localhost';
FLUSH PRIVILEGES;
