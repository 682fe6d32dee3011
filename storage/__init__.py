"""The partition log on local disk, in Kafka's on-disk layout."""
from storage.config import LogConfig
from storage.log import AppendInfo, AppendOrigin, FileSlice, PartitionLog
from storage.manager import LogManager

__all__ = ["AppendInfo", "AppendOrigin", "FileSlice", "LogConfig", "LogManager", "PartitionLog"]
